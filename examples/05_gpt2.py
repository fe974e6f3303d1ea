"""Chapter 05, the storyteller: train a GPT on TinyStories with tinytensor alone, then let it write stories.

What it teaches: everything so far, together. Stories become tokens (a 4096-token BPE vocabulary,
chapter 06, trained on the training stories), tokens become uint16 shards streamed by a seeded loader
(chapter 11), and a GPT-2 (models/gpt2.py: attention, pre-norm blocks, weight tying) learns to predict
the next token with AdamW, warmup and a cosine learning-rate decay. Validation loss is measured on the
last 10% of the stories, which training never sees. Checkpoints are atomic and hold the model, the
optimizer, the schedule, the random state and the loader's position, so an interrupted run continues
exactly. At the end the model writes a few stories, each started from the BOS token alone.

Run:
    python examples/05_gpt2.py --sample          # stories at once from the shipped checkpoint
    python examples/05_gpt2.py                   # train from scratch (default config), then write stories
    python examples/05_gpt2.py --model llama     # the same with the Llama-style model (RoPE, RMSNorm, GQA, SwiGLU)
    python examples/05_gpt2.py --steps 50 --eval-interval 25    # a quick try

Prints: data and model sizes, a progress bar with the loss, val loss every --eval-interval steps,
the final val loss, training time and tokens/s, and --num-samples stories. Saves under --out
(default out/05_gpt2/): tokenizer.bpe, data/ (shards), ckpt/ (resumable checkpoint), model/ (the
trained model: Hugging Face GPT-2 layout for --model gpt), log.json and loss.png.
The default configuration (L2 H4 C128, T128, B32) is sized to finish in about 15 minutes on a 2-core CPU;
rerunning with the same --out resumes from the last checkpoint (use --fresh to start over).
"""
import argparse
import json
import os
import secrets
import signal
import sys
import time
from typing import List, Optional

from tqdm import tqdm

import tinytensor as tt
from tinytensor.data import DataLoader, iter_documents, load_index, prepare_shards
from tinytensor.optim.lr_scheduler import WarmupCosineLR
from tinytensor.tokenizer import RegexTokenizer, Tokenizer
from models.gpt2 import GPT, GPTConfig
from models.llama import Llama, LlamaConfig

HERE = os.path.dirname(os.path.abspath(__file__))
EOT = "<|endoftext|>"
SHIPPED = os.path.join(HERE, "checkpoints", "storyteller")
TRAIN_SEED = 1337  # training's seed when --seed is not given (sampling then draws a fresh one)


def get_tokenizer(args) -> Tokenizer:
    """The BPE tokenizer cached in --out, trained on the training stories the first time."""
    path = os.path.join(args.out, "tokenizer.bpe")
    if os.path.exists(path):
        return Tokenizer.load(path)
    stories = list(iter_documents(args.data))
    n_train = len(stories) - int(round(len(stories) * args.val_fraction))
    tok = RegexTokenizer()
    start = time.perf_counter()
    tok.train(f"\n{EOT}\n".join(stories[:n_train]), args.vocab_size, special_tokens=[EOT])
    tok.save(path)
    print(f"trained {tok} on {n_train} stories in {time.perf_counter() - start:.1f} s -> {path}")
    return tok


def get_shards(args, tok: Tokenizer) -> str:
    """Token shards of --data in --out/data, prepared once (again if the source or tokenizer changed)."""
    data_dir = os.path.join(args.out, "data")
    meta = {"source": os.path.abspath(args.data), "source_bytes": os.path.getsize(args.data),
            "vocab_size": tok.vocab_size, "merges": len(tok.merges), "val_fraction": args.val_fraction}
    try:
        if load_index(data_dir)["meta"] == meta:
            return data_dir
    except (FileNotFoundError, ValueError):
        pass
    prepare_shards(args.data, tok, data_dir, args.val_fraction, meta=meta)
    return data_dir


def build_model(args, vocab_size: int):
    if args.model == "gpt":
        return GPT(GPTConfig(block_size=args.block_size, vocab_size=vocab_size, n_layer=args.n_layer,
                             n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout, bias=args.bias))
    return Llama(LlamaConfig(block_size=args.block_size, vocab_size=vocab_size, n_layer=args.n_layer,
                             n_head=args.n_head, n_kv_heads=args.n_kv_heads or max(1, args.n_head // 2),
                             n_embd=args.n_embd, dropout=args.dropout, n_experts=args.n_experts))


@tt.no_grad()
def evaluate(model, batches) -> float:
    """Mean loss per token over the given (x, y) batches."""
    model.eval()
    total = count = 0
    for x, y in batches:
        _, loss = model(x, y)
        total, count = total + loss.item() * x.numel(), count + x.numel()
    model.train()
    return total / count


def write_stories(model, tok: Tokenizer, args) -> List[str]:
    """--num-samples stories, each starting from <|endoftext|> and --prompt, sampled with args.seed."""
    if args.num_samples <= 0:
        return []
    bos = tok.special_tokens[EOT]
    prompt = [bos] + tok.encode(getattr(args, "prompt", "") or "")  # every story starts after <|endoftext|>
    idx = tt.tensor([prompt] * args.num_samples, dtype=tt.int64)
    out = model.generate(idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         seed=args.seed, eos_token=bos).numpy()
    stories = []
    for row in out:
        ids = row[1:].tolist()
        stories.append(tok.decode(ids[:ids.index(bos)] if bos in ids else ids).strip())
    return stories


def save_model(model, tok: Tokenizer, path: str, log: dict) -> None:
    """The trained model in a directory --sample can read: HF GPT-2 layout for GPT, safetensors + JSON for Llama."""
    os.makedirs(path, exist_ok=True)
    if isinstance(model, GPT):
        model.save_pretrained(path)
    else:
        tt.save({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                os.path.join(path, "llama.safetensors"))
        with open(os.path.join(path, "llama_config.json"), "w", encoding="utf-8") as f:
            json.dump(vars(model.config), f, indent=1)
    tok.save(os.path.join(path, "tokenizer.bpe"))
    with open(os.path.join(path, "log.json"), "w", encoding="utf-8") as f:
        json.dump(log, f, indent=1)


def load_model(path: str):
    if os.path.exists(os.path.join(path, "llama_config.json")):
        with open(os.path.join(path, "llama_config.json"), encoding="utf-8") as f:
            model = Llama(LlamaConfig(**json.load(f)))
        model.load_state_dict(tt.load(os.path.join(path, "llama.safetensors")))
    else:
        model = GPT.from_pretrained(path)
    return model, Tokenizer.load(os.path.join(path, "tokenizer.bpe"))


def plot(log: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(log["train_steps"], log["train_loss"], lw=0.8, alpha=0.7, label="train (smoothed)")
    ax.plot(log["val_steps"], log["val_loss"], "o-", label="val")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_ylim(top=min(8.5, max(log["train_loss"][:1] + [4])))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_step(model, opt, sched, loader, grad_clip: float) -> float:
    """One optimizer step on the loader's next batch; returns the batch's loss."""
    x, y = loader.next_batch()
    _, loss = model(x, y)
    opt.zero_grad()
    loss.backward()
    if grad_clip:
        tt.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    sched.step()
    return loss.item()


class CtrlC:
    """Inside `with CtrlC() as c:` a first Ctrl-C only sets c.requested (the loop checkpoints at the end of the
    step and stops); a second one interrupts at once. The previous SIGINT handler comes back on exit."""

    def __enter__(self) -> "CtrlC":
        self.requested = False
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: saving a checkpoint after this step (press again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def train(args) -> None:
    os.makedirs(args.out, exist_ok=True)
    args.seed = TRAIN_SEED if args.seed is None else args.seed  # a training run is reproducible by default
    tok = get_tokenizer(args)
    data_dir = get_shards(args, tok)
    index = load_index(data_dir)
    print(f"data: {index['splits']['train']['tokens']:,} train tokens, {index['splits']['val']['tokens']:,} val "
          f"tokens ({index['splits']['val']['docs']} held-out stories), vocabulary {tok.vocab_size}")
    tt.manual_seed(args.seed)
    model = build_model(args, tok.vocab_size)
    opt = model.configure_optimizers(args.weight_decay, args.lr, betas=(0.9, 0.95))
    sched = WarmupCosineLR(opt, min(args.warmup, args.steps), args.steps, args.min_lr_ratio)
    loader = DataLoader(data_dir, "train", args.batch_size, args.block_size, seed=args.seed)
    val_batches = list(DataLoader(data_dir, "val", args.batch_size, args.block_size, shuffle=False).epoch_batches())
    val_batches = val_batches[:args.eval_batches] if args.eval_batches else val_batches
    ckpt = os.path.join(args.out, "ckpt")
    log = {"args": vars(args), "train_steps": [], "train_loss": [], "val_steps": [], "val_loss": [], "seconds": 0.0}
    step = 0
    if not args.fresh and os.path.exists(os.path.join(ckpt, "checkpoint.json")):
        info = tt.load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched)
        step, log = info["step"], info["extra"]
        loader.load_state_dict(info["data_position"])
        print(f"resumed from {ckpt} at step {step}")
    print(f"model: {type(model).__name__} with {model.num_parameters():,} parameters; "
          f"{args.steps} steps of {args.batch_size}x{args.block_size} tokens")
    bar = tqdm(total=args.steps, initial=step, desc="train", dynamic_ncols=True)
    smooth, t0 = (log["train_loss"] or [None])[-1], time.perf_counter() - log["seconds"]
    last_save = time.perf_counter()
    with CtrlC() as interrupt:
        while step < args.steps:
            lv = train_step(model, opt, sched, loader, args.grad_clip)
            step += 1
            smooth = lv if smooth is None else round(0.95 * smooth + 0.05 * lv, 4)  # rounded as logged: exact resume
            log["train_steps"].append(step)
            log["train_loss"].append(smooth)
            bar.update(1)
            bar.set_postfix(loss=f"{lv:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            if step % args.eval_interval == 0 or step == args.steps:
                val = evaluate(model, val_batches)
                log["val_steps"].append(step)
                log["val_loss"].append(round(val, 4))
                bar.write(f"step {step}: val loss {val:.4f} ({time.perf_counter() - t0:.0f} s)")
            stop = step == args.stop_after or interrupt.requested
            due = step % args.ckpt_interval == 0 or time.perf_counter() - last_save >= 60 * args.ckpt_minutes
            if due or stop or step == args.steps:
                log["seconds"] = time.perf_counter() - t0
                tt.save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, step=step,
                                   data_position=loader.state_dict(), extra=log)
                last_save = time.perf_counter()
            if stop:
                bar.close()
                why = "interrupted (Ctrl-C)" if interrupt.requested else "stopped as asked"
                print(f"{why} at step {step}; checkpoint saved in {ckpt}: run again with the same arguments to "
                      f"continue")
                return
    bar.close()
    seconds = time.perf_counter() - t0
    log["seconds"] = seconds
    print(f"final val loss {log['val_loss'][-1]:.4f} nats/token ({len(val_batches)} val batches) after "
          f"{step} steps in {seconds / 60:.1f} min ({step * args.batch_size * args.block_size / seconds:,.0f} "
          f"tokens/s)")
    save_model(model, tok, os.path.join(args.out, "model"), log)
    plot(log, os.path.join(args.out, "loss.png"))
    with open(os.path.join(args.out, "log.json"), "w", encoding="utf-8") as f:
        json.dump(log, f)
    for i, story in enumerate(write_stories(model, tok, args)):
        print(f"\n--- story {i + 1} ---\n{story}")


def sample(args) -> None:
    if args.seed is None:  # new stories every run; the printed seed brings a run's stories back
        args.seed = secrets.randbelow(2**31)
    path = args.checkpoint or (os.path.join(args.out, "model") if os.path.exists(os.path.join(args.out, "model"))
                               else SHIPPED)
    if not os.path.exists(path):
        sys.exit(f"no trained model at {path}: train one first (python examples/05_gpt2.py)")
    model, tok = load_model(path)
    print(f"loaded {type(model).__name__} ({model.num_parameters():,} parameters) from {path}; seed {args.seed} "
          f"(--seed {args.seed} writes these stories again)")
    for i, story in enumerate(write_stories(model, tok, args)):
        print(f"\n--- story {i + 1} ---\n{story}")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--sample", action="store_true", help="only write stories with a trained model")
    ap.add_argument("--checkpoint", default=None, help="model directory for --sample (default: --out/model, "
                    "else the shipped examples/checkpoints/storyteller)")
    ap.add_argument("--model", choices=["gpt", "llama"], default="gpt", help="GPT-2 or the Llama-style model")
    ap.add_argument("--data", default=os.path.join(HERE, "data", "tinystories_sample.txt"),
                    help="the text to train on: stories separated by <|endoftext|>")
    ap.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary size")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="the last stories kept for validation")
    ap.add_argument("--n-layer", type=int, default=2, help="transformer blocks (depth)")
    ap.add_argument("--n-head", type=int, default=4, help="attention heads per block (must divide --n-embd)")
    ap.add_argument("--n-kv-heads", type=int, default=0, help="llama: key/value heads (0: n_head // 2)")
    ap.add_argument("--n-experts", type=int, default=0, help="llama: mixture-of-experts MLPs (0: dense)")
    ap.add_argument("--n-embd", type=int, default=128, help="width C: the size of every token's vector")
    ap.add_argument("--block-size", type=int, default=128, help="context length T")
    ap.add_argument("--batch-size", type=int, default=32, help="sequences per step B")
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout rate in training (0: off)")
    ap.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False, help="biases (GPT-2 has them)")
    ap.add_argument("--steps", type=int, default=1600, help="optimizer steps (each one batch of B x T tokens)")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr as a fraction of the peak")
    ap.add_argument("--warmup", type=int, default=100, help="linear warmup steps")
    ap.add_argument("--weight-decay", type=float, default=0.1, help="AdamW's decoupled weight decay (matrices only)")
    ap.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm (0: off)")
    ap.add_argument("--eval-interval", type=int, default=250, help="steps between val evaluations")
    ap.add_argument("--eval-batches", type=int, default=0, help="val batches per evaluation (0: all of them)")
    ap.add_argument("--ckpt-interval", type=int, default=250, help="steps between checkpoints")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0, help="also checkpoint when this many minutes have "
                    "passed since the last one (Ctrl-C checkpoints too)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    ap.add_argument("--stop-after", type=int, default=0, help="stop (checkpointed) at this step, to resume later")
    ap.add_argument("--num-samples", type=int, default=3, help="stories to write (after training, or with --sample)")
    ap.add_argument("--prompt", default="", help="the opening words of every story (e.g. 'Once upon a time')")
    ap.add_argument("--max-new-tokens", type=int, default=256, help="longest story, in tokens")
    ap.add_argument("--temperature", type=float, default=0.8,
                    help="sampling temperature: lower is safer and duller, 0 is greedy")
    ap.add_argument("--top-k", type=int, default=50, help="sample only among the k most likely next tokens (0: all)")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: keep the smallest set of likely "
                    "tokens whose probability reaches p (1: off)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: the default)")
    ap.add_argument("--seed", type=int, default=None, help=f"random seed; training uses {TRAIN_SEED} when not given, "
                    "--sample draws a fresh one (printed) so every run writes new stories")
    ap.add_argument("--out", default=os.path.join("out", "05_gpt2"),
                    help="folder for the tokenizer, shards, checkpoint, model, log and plot")
    args = ap.parse_args(argv)
    if args.threads:
        tt.set_num_threads(args.threads)
    if args.sample:
        sample(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
