// cuda_fp16.h for the emulator (emu.h): __half on the host via GCC's _Float16 (correctly rounded conversions).
#pragma once
#include <cstring>
struct __half { unsigned short x; };
inline __half emu_half(_Float16 h) { __half r; std::memcpy(&r.x, &h, 2); return r; }
inline float __half2float(__half h) { _Float16 f; std::memcpy(&f, &h.x, 2); return float(f); }
inline __half __float2half_rn(float f) { return emu_half(_Float16(f)); }
inline __half __double2half(double d) { return emu_half(_Float16(d)); }
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half __ushort_as_half(unsigned short b) { __half r; r.x = b; return r; }
