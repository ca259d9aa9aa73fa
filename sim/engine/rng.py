"""Counter-based random numbers and the special functions the kernels need.

Every draw is a pure function of (run key, path, stream, index): a SplitMix64
finaliser chain over the counters. No generator state is carried between
draws, so a path's numbers are the same whichever thread, block or worker
computes it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0

# Streams: one per kind of draw, so changing how many of one kind a path uses
# never shifts another kind.
STREAM_SYSTEMATIC = 1
STREAM_SECTOR = 2
STREAM_MIXING = 3
STREAM_DENSE = 4
STREAM_SKIP = 5
STREAM_ACCEPT = 6
STREAM_SKIP_TAIL = 7
STREAM_RECOVERY = 8
STREAM_TAIL_COMPONENT = 9  # importance sampling: which component of the defensive mixture draws a path


@njit(cache=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def stream_base(key: np.uint64, path: np.int64, stream: np.int64) -> np.uint64:
    """The part of a counter's hash fixed by (key, path, stream): loops that draw
    many numbers from one stream compute it once."""
    return _mix64(_mix64(key + np.uint64(path) * _GOLDEN + _GOLDEN) ^ (np.uint64(stream) * _M1))


@njit(cache=True, inline="always")
def counter_bits(base: np.uint64, index: np.int64) -> np.uint64:
    """The 64 hashed bits of draw `index` of the stream whose base is `base`."""
    return _mix64(base + np.uint64(index) * _GOLDEN + _GOLDEN)


@njit(cache=True, inline="always")
def uniform_at(base: np.uint64, index: np.int64) -> float:
    """Uniform on the open interval (0, 1), 53 bits, for draw `index` of the
    stream whose base is `base`."""
    # a 53-bit value converts to float exactly from int64 in one instruction
    # (uint64 takes several on x86-64)
    return (float(np.int64(counter_bits(base, index) >> np.uint64(11))) + 0.5) * _TWO_M53


@njit(cache=True, inline="always")
def fill_counter_bits(base: np.uint64, first: np.int64, out: np.ndarray) -> None:
    """out[k] = `counter_bits(base, first + k)` for every k of `out`: a pass
    without branches, which the compiler turns into vector instructions."""
    for k in range(out.size):
        out[k] = counter_bits(base, first + k)


@njit(cache=True, inline="always")
def fill_uniforms(base: np.uint64, first: np.int64, scale: float, out: np.ndarray) -> None:
    """out[k] = `uniform_at(base, first + k)` * scale for every k of `out`
    (vectorised as `fill_counter_bits`)."""
    for k in range(out.size):
        out[k] = uniform_at(base, first + k) * scale


def _exponential_ziggurat(layers: int = 256, edge: float = 7.69711747013104972,
                          area: float = 3.949659822581572e-3):
    """Marsaglia & Tsang's (2000) ziggurat tables for Exp(1) at 53-bit resolution:
    for layer i, the acceptance limit `ke` on a 53-bit integer r, the scale
    `we` (x = r we) and the density `fe` at the layer's right edge. Layer 0 is
    the base strip plus the tail beyond `edge`."""
    m = float(1 << 53)
    ke = np.zeros(layers, np.uint64)
    we = np.zeros(layers)
    fe = np.zeros(layers)
    x = edge
    base = area / math.exp(-x)
    ke[0] = np.uint64(int(x / base * m))
    we[0], we[-1] = base / m, x / m
    fe[0], fe[-1] = 1.0, math.exp(-x)
    for i in range(layers - 2, 0, -1):
        inner = -math.log(area / x + math.exp(-x))
        ke[i + 1] = np.uint64(int(inner / x * m))
        x = inner
        fe[i] = math.exp(-x)
        we[i] = x / m
    return ke, we, fe


ZIGGURAT_EDGE = 7.69711747013104972
_ZIG_KE, _ZIG_WE, _ZIG_FE = _exponential_ziggurat(edge=ZIGGURAT_EDGE)


@njit(cache=True, inline="always")
def exponential_fast(base: np.uint64, index: np.int64):
    """(x, layer, final): the ziggurat's first try at Exp(1) draw `index` of the
    stream whose base is `base`; x is the draw when `final` (97.8 % of draws),
    else `exponential_rare(tail_base, index, layer, x)` gives it. Split from
    `exponential_at` so a hot loop can test `final` with its own exit test."""
    return exponential_from_bits(counter_bits(base, index))


@njit(cache=True, inline="always")
def exponential_from_bits(bits: np.uint64):
    """`exponential_fast` from the draw's hashed bits (`counter_bits`)."""
    layer = np.int64(bits & np.uint64(0xFF))
    r = bits >> np.uint64(11)
    return float(np.int64(r)) * _ZIG_WE[layer], layer, r < _ZIG_KE[layer]


@njit(cache=True)
def exponential_at(base: np.uint64, tail_base: np.uint64, index: np.int64) -> float:
    """Exp(1) draw `index` of the stream whose base is `base` (ziggurat: one
    hash, and for 97.8 % of draws a table look-up and a multiply, no log); the
    rest draw from the stream whose base is `tail_base`."""
    x, layer, final = exponential_fast(base, index)
    return x if final else exponential_rare(tail_base, index, layer, x)


@njit(cache=True)
def exponential_rare(tail_base, index, layer, x):
    """A ziggurat point outside its layer's rectangle: the tail beyond the edge
    (edge + Exp(1), by memorylessness) or a wedge test against exp(-x); a
    rejected point starts again with fresh bits. Uses draws index * 64 + 1 ..
    of the tail stream; 31 rejections in a row (p ~ 1e-60) end in the last x."""
    sub = np.uint64(index) * np.uint64(64)
    for attempt in range(31):
        u = uniform_at(tail_base, sub + np.uint64(2 * attempt + 1))
        if layer == 0:
            return ZIGGURAT_EDGE - math.log(u)
        if _ZIG_FE[layer] + u * (_ZIG_FE[layer - 1] - _ZIG_FE[layer]) < math.exp(-x):
            return x
        x, layer, final = exponential_fast(tail_base, sub + np.uint64(2 * attempt + 2))
        if final:
            return x
    return x


@njit(cache=True)
def uniform(key: np.uint64, path: np.int64, stream: np.int64, index: np.int64) -> float:
    """Uniform on the open interval (0, 1), 53 bits, for the counter (key, path, stream, index)."""
    return uniform_at(stream_base(key, path, stream), index)


@njit(cache=True)
def ndtr(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(cache=True)
def ndtri(p: float) -> float:
    """Standard normal quantile (Wichura's AS241, about 1e-16 relative accuracy)."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r
                    + 67265.770927008700853) * r + 45921.953931549871457) * r
                  + 13731.693765509461125) * r + 1971.5909503065514427) * r
                + 133.14166789178437745) * r + 3.387132872796366608)
        den = (((((((5226.495278852545925 * r + 28729.085735721942674) * r
                    + 39307.89580009271061) * r + 21213.794301586595867) * r
                  + 5394.1960214247511077) * r + 687.1870074920579083) * r
                + 42.313330701600911252) * r + 1.0)
        return q * num / den
    r = p if q < 0 else 1.0 - p
    if r <= 0.0:
        return -np.inf if q < 0 else np.inf
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        num = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
                    + 0.24178072517745061177) * r + 1.27045825245236838258) * r
                  + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                + 4.6303378461565452959) * r + 1.42343711074968357734)
        den = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                    + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
                  + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
                    + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
                  + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                + 5.4637849111641143699) * r + 6.6579046435011037772)
        den = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                    + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
                  + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
                + 0.59983220655588793769) * r + 1.0)
    x = num / den
    return -x if q < 0 else x


@njit(cache=True)
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


@njit(cache=True)
def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


@njit(cache=True)
def t_sf(x: float, dof: float) -> float:
    """Survival function P(T > x) of Student's t with `dof` degrees of freedom."""
    tail = 0.5 * betainc(0.5 * dof, 0.5, dof / (dof + x * x))
    return tail if x > 0 else 1.0 - tail


@njit(cache=True)
def std_normal(key: np.uint64, path: np.int64, stream: np.int64, index: np.int64) -> float:
    """Standard normal draw by inversion of one counter uniform."""
    return ndtri(uniform(key, path, stream, index))


@njit(cache=True)
def gamma_draw(key: np.uint64, path: np.int64, stream: np.int64, index: np.int64, shape: float) -> float:
    """Gamma(shape, 1) draw (Marsaglia-Tsang, with their squeeze). Uses
    sub-indices index*64 + j, so callers must space `index` values at least 1
    apart."""
    counters = stream_base(key, path, stream)
    base = index * 64
    j = 0
    boost = 1.0
    if shape < 1.0:
        boost = uniform_at(counters, base) ** (1.0 / shape)
        shape += 1.0
        j = 1
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = ndtri(uniform_at(counters, base + j))
        v = (1.0 + c * x) ** 3
        u = uniform_at(counters, base + j + 1)
        j += 2
        if v > 0.0:
            x2 = x * x
            # the squeeze lies inside the acceptance region: it saves two logs
            # on ~98 % of tries and decides nothing differently
            if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d - d * v + d * math.log(v):
                return d * v * boost
        if j >= 63:  # acceptance is > 95 % per try; 31 rejections in a row is ~1e-40
            return d * boost
