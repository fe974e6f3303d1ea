"""Synthetic stories from templates: a stand-in for model-written data (chapter 11, used again in 14 and 15).

    stories = synthetic_stories(500, seed=0)     # list of str, each a short story ending with its moral

Each story draws a character, a friend, a place, an object, a problem and a moral, and fills one of a
few plot templates, so the corpus has TinyStories' shape (simple words, a beginning, a problem, an
ending, "The moral of the story is ...") with a known, countable structure. `story_parts` returns the
choices too, for tasks that need labels (e.g. "what was the moral?" pairs for fine-tuning).
Left out: any claim of diversity: real synthetic data comes from a strong model, not from templates.
"""
from __future__ import annotations

import random
from typing import Dict, List, Tuple

CHARACTERS = [("Lily", "girl", "she", "her"), ("Tom", "boy", "he", "his"), ("Mia", "girl", "she", "her"),
              ("Ben", "boy", "he", "his"), ("Sue", "girl", "she", "her"), ("Max", "dog", "he", "his"),
              ("Kitty", "cat", "she", "her"), ("Sam", "bunny", "he", "his"), ("Zoe", "bird", "she", "her"),
              ("Leo", "lion", "he", "his")]
ADJECTIVES = ["little", "happy", "curious", "brave", "shy", "kind", "silly", "tiny"]
PLACES = ["the park", "the forest", "the beach", "the garden", "a big castle", "the farm", "the river",
          "the school", "the old house", "the hill"]
OBJECTS = [("ball", "red"), ("kite", "blue"), ("toy car", "shiny"), ("book", "big"), ("hat", "yellow"),
           ("cake", "sweet"), ("flower", "pretty"), ("boat", "small"), ("box", "heavy"), ("drum", "loud")]
PROBLEMS = [("lost the {obj}", "looked everywhere for it", "found it under a tree"),
            ("broke the {obj}", "felt very sad", "fixed it with some glue"),
            ("threw the {obj} up into a tall tree", "tried and tried to get it", "stood on a rock and got it"),
            ("dropped the {obj} in the water", "started to cry", "used a long stick to pull it out")]
MORALS = [("help", "friends help each other"), ("asking", "it is good to ask for help"),
          ("kindness", "a little kindness goes a long way"), ("persistence", "never give up"),
          ("teamwork", "we can do more when we work together")]

TEMPLATES = [
    "Once upon a time, there was a {adj} {kind} named {name}. {Sub} loved to play at {place}. One day, {sub} "
    "took {pos} {color} {obj} to {place}. But then {sub} {problem}! {Name} {react}. {Friend}, {pos} "
    "friend, came to help. Together they {fix}. {Name} was happy again and said, \"Thank you, {friend}!\" "
    "They played until the sun went down. The moral of the story is: {moral}.",
    "{Name} was a {adj} {kind} who lived near {place}. {Sub} had a {color} {obj} that {sub} liked very much. "
    "One morning, {name} {problem}. \"Oh no!\" said {name}. {Sub} {react}. Then {friend} saw {name} "
    "and asked, \"What is wrong?\" {Name} told {friend} everything. {Friend} smiled, and they {fix}. "
    "From that day on, {name} and {friend} were best friends. The moral of the story is: {moral}.",
    "One sunny day, {name} the {adj} {kind} went to {place} with {pos} friend {friend}. {Name} played with "
    "{pos} {color} {obj}, but then {sub} {problem}. {Name} {react}, and {friend} did not laugh. {Friend} said, "
    "\"Let me help you.\" So they {fix}. {Name} learned something that day. The moral of the story is: {moral}.",
]


def story_parts(rng: random.Random) -> Tuple[str, Dict[str, str]]:
    """One story and the choices it was built from (name, friend, place, object, problem, moral)."""
    (name, kind, sub, pos), (friend, *_) = rng.sample(CHARACTERS, 2)
    obj, color = rng.choice(OBJECTS)
    problem, react, fix = rng.choice(PROBLEMS)
    topic, moral = rng.choice(MORALS)
    fields = dict(name=name, kind=kind, sub=sub, pos=pos, friend=friend, adj=rng.choice(ADJECTIVES),
                  place=rng.choice(PLACES), obj=obj, color=color, problem=problem.format(obj=obj), react=react,
                  fix=fix, moral=moral)
    fields.update({k.capitalize(): v.capitalize() for k, v in list(fields.items())})
    text = rng.choice(TEMPLATES).format(**fields)
    return text, {"name": name, "friend": friend, "place": fields["place"], "object": obj,
                  "problem": problem.split(" ")[0], "moral": topic}


def synthetic_stories(n: int, seed: int = 0) -> List[str]:
    """n template stories, reproducible from the seed."""
    rng = random.Random(seed)
    return [story_parts(rng)[0] for _ in range(n)]
