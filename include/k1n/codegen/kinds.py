"""The pattern kinds: what each kind's `params` may hold and what its templates are given.

A kind is a pydantic model for its params, a pair of templates (`<kind>.py.j2` for the module,
`test_<kind>.py.j2` for its tests) and a function that turns validated params into the render
context. Everything a template needs that is more than formatting (a CRC table, quantised FIR
taps, a transition table) is computed here, in plain Python, so the templates stay readable and
the generated tests can check the numbers against an independent reference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

UPPER_IDENTIFIER = r"^[A-Z][A-Z0-9_]{0,39}$"
Seed = Annotated[int, Field(ge=1, lt=2**32, description="seed of the tests' random data")]


class Params(BaseModel):
    """Base of every kind's params: no unknown keys, no silent coercion of types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- crc -----------------------------------------------------------------------------------


class CrcParams(Params):
    """A CRC in the Rocksoft model, as listed in the CRC catalogue, plus a test workload."""

    algorithm: str = Field(pattern=r"^CRC-(8|16|32)(/[A-Z0-9-]+)?$")
    width: Literal[8, 16, 32]
    poly: int = Field(ge=1)
    init: int = Field(ge=0)
    refin: bool
    refout: bool
    xorout: int = Field(ge=0)
    check: int = Field(ge=0, description="catalogue checksum of b'123456789'")
    messages: int = Field(ge=1, le=10_000, description="random messages checked in the tests")
    seed: Seed

    @model_validator(mode="after")
    def _fits_width(self) -> CrcParams:
        limit = 1 << self.width
        for name in ("poly", "init", "xorout", "check"):
            if getattr(self, name) >= limit:
                raise ValueError(f"{name} does not fit in {self.width} bits")
        if not self.poly & 1:
            raise ValueError("poly must be odd (the x^0 term is always present)")
        if self.refin != self.refout:
            # A single table serves both directions only when input and output agree; every
            # algorithm in the library does, and mixed ones are rare enough to leave out.
            raise ValueError("refin and refout must be equal")
        return self


def reflect(value: int, width: int) -> int:
    """`value`'s lowest `width` bits in reverse order."""
    result = 0
    for _ in range(width):
        result = (result << 1) | (value & 1)
        value >>= 1
    return result


def crc_table(width: int, poly: int, reflected: bool) -> list[int]:
    """The 256-entry byte-at-a-time table, MSB-first or (reflected) LSB-first."""
    mask = (1 << width) - 1
    table = []
    if reflected:
        rpoly = reflect(poly, width)
        for byte in range(256):
            register = byte
            for _ in range(8):
                register = (register >> 1) ^ rpoly if register & 1 else register >> 1
            table.append(register)
    else:
        top = 1 << (width - 1)
        for byte in range(256):
            register = byte << (width - 8)
            for _ in range(8):
                register = ((register << 1) ^ poly) & mask if register & top else register << 1
            table.append(register & mask)
    return table


def crc_bitwise(params: CrcParams, data: bytes) -> int:
    """Bit-at-a-time CRC, the textbook definition; used to check catalogue entries."""
    mask = (1 << params.width) - 1
    register = params.init
    for byte in data:
        register ^= (reflect(byte, 8) if params.refin else byte) << (params.width - 8)
        for _ in range(8):
            shifted = register << 1
            register = (shifted ^ params.poly if register >> (params.width - 1) else shifted) & mask
    if params.refout:
        register = reflect(register, params.width)
    return register ^ params.xorout


# Catalogue algorithms that a standard-library function computes too: a second reference.
CRC_STDLIB_REFERENCES = {
    "CRC-32/ISO-HDLC": ("zlib", "zlib.crc32(data)"),
    "CRC-16/XMODEM": ("binascii", "binascii.crc_hqx(data, 0)"),
    "CRC-16/IBM-3740": ("binascii", "binascii.crc_hqx(data, 0xFFFF)"),
}


def _crc_context(params: CrcParams) -> dict[str, Any]:
    reflected = params.refin
    digits = params.width // 4
    module, expression = CRC_STDLIB_REFERENCES.get(params.algorithm, (None, None))
    return {
        "digits": digits,
        "mask": (1 << params.width) - 1,
        "reflected": reflected,
        # The register runs bit-reversed for reflected algorithms, so it starts reversed too.
        "register_init": reflect(params.init, params.width) if reflected else params.init,
        "table": crc_table(params.width, params.poly, reflected),
        "stdlib_module": module,
        "stdlib_expression": expression,
    }


# -- ring_buffer ---------------------------------------------------------------------------


class RingBufferParams(Params):
    """A fixed-capacity FIFO of unsigned items and what a push onto a full buffer does."""

    capacity: int = Field(ge=2, le=4096)
    item_bits: Literal[8, 16, 32]
    overflow: Literal["reject", "overwrite"]
    operations: int = Field(ge=1, le=1_000_000, description="random push/pop steps in the tests")
    seed: Seed


def _ring_buffer_context(params: RingBufferParams) -> dict[str, Any]:
    power_of_two = params.capacity & (params.capacity - 1) == 0
    return {
        "power_of_two": power_of_two,
        "item_max": (1 << params.item_bits) - 1,
        "digits": params.item_bits // 4,
    }


# -- fsm -----------------------------------------------------------------------------------


class Transition(Params):
    """One row of a state machine's specification: in `source`, `event` leads to `target`."""

    source: str
    event: str
    target: str


class FsmParams(Params):
    """A table-driven finite state machine: states, events, transitions, a random-walk length."""

    states: list[str] = Field(min_length=2, max_length=32)
    events: list[str] = Field(min_length=1, max_length=16)
    initial: str
    transitions: list[Transition] = Field(min_length=1)
    walk_steps: int = Field(ge=1, le=1_000_000)
    seed: Seed

    @model_validator(mode="after")
    def _consistent(self) -> FsmParams:
        for group in ("states", "events"):
            names = getattr(self, group)
            if len(set(names)) != len(names):
                raise ValueError(f"{group} must be unique")
            for name in names:
                if not re.match(UPPER_IDENTIFIER, name):
                    raise ValueError(f"{group}: {name!r} is not an UPPER_CASE identifier")
        if self.initial not in self.states:
            raise ValueError(f"initial state {self.initial!r} is not declared")
        seen = set()
        for row in self.transitions:
            if row.source not in self.states or row.target not in self.states:
                raise ValueError(f"transition {row.source} -> {row.target}: undeclared state")
            if row.event not in self.events:
                raise ValueError(f"transition on {row.event!r}: undeclared event")
            if (row.source, row.event) in seen:
                raise ValueError(f"two transitions for {row.event} in {row.source}")
            seen.add((row.source, row.event))
        return self


def _fsm_context(params: FsmParams) -> dict[str, Any]:
    state_index = {name: i for i, name in enumerate(params.states)}
    event_index = {name: i for i, name in enumerate(params.events)}
    table = [[-1] * len(params.events) for _ in params.states]
    for row in params.transitions:
        table[state_index[row.source]][event_index[row.event]] = state_index[row.target]
    cell = max(len(str(len(params.states) - 1)), 2)  # width of "-1"
    return {
        "table_rows": [", ".join(str(target).rjust(cell) for target in row) for row in table],
        "transitions_sorted": sorted(
            params.transitions, key=lambda t: (state_index[t.source], event_index[t.event])
        ),
    }


# -- register_map --------------------------------------------------------------------------

RESERVED_REGISTER_NAMES = frozenset(
    {"BUS_BITS", "BUS_MASK", "PERIPHERAL", "REGISTERS", "BY_OFFSET", "BY_NAME"}
)


class BitField(Params):
    """`width` bits from bit `lsb`; `ro` read-only, `rw` read-write, `w1c` write-one-to-clear."""

    name: str = Field(pattern=UPPER_IDENTIFIER)
    lsb: int = Field(ge=0)
    width: int = Field(ge=1)
    access: Literal["rw", "ro", "w1c"]
    reset: int = Field(ge=0)


class Register(Params):
    """A register at a byte offset, made of non-overlapping bit-fields."""

    name: str = Field(pattern=UPPER_IDENTIFIER)
    offset: int = Field(ge=0)
    fields: list[BitField] = Field(min_length=1)


class RegisterMapParams(Params):
    """A peripheral's register map and how many random field values the tests round-trip."""

    peripheral: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    bus_bits: Literal[8, 16, 32]
    registers: list[Register] = Field(min_length=1)
    samples: int = Field(ge=1, le=1_000_000)
    seed: Seed

    @model_validator(mode="after")
    def _consistent(self) -> RegisterMapParams:
        stride = self.bus_bits // 8
        names: set[str] = set()
        offsets: set[int] = set()
        for register in self.registers:
            if register.name in names or register.name in RESERVED_REGISTER_NAMES:
                raise ValueError(f"register name {register.name} is duplicated or reserved")
            if register.offset in offsets or register.offset % stride:
                raise ValueError(f"{register.name}: offset {register.offset} taken or unaligned")
            names.add(register.name)
            offsets.add(register.offset)
            used = 0
            field_names: set[str] = set()
            for field in register.fields:
                mask = ((1 << field.width) - 1) << field.lsb
                if field.lsb + field.width > self.bus_bits:
                    raise ValueError(f"{register.name}.{field.name} exceeds the bus width")
                if used & mask or field.name in field_names:
                    raise ValueError(f"{register.name}.{field.name} overlaps or is duplicated")
                if field.reset >= 1 << field.width:
                    raise ValueError(f"{register.name}.{field.name}: reset does not fit")
                used |= mask
                field_names.add(field.name)
        return self


def _register_map_context(params: RegisterMapParams) -> dict[str, Any]:
    return {
        "digits": params.bus_bits // 4,
        "bus_mask": (1 << params.bus_bits) - 1,
        "stride": params.bus_bits // 8,
    }


# -- fir_filter ----------------------------------------------------------------------------

Q_BITS = 15


class FirFilterParams(Params):
    """A windowed-sinc low-pass FIR in Q15 fixed point over 16-bit samples."""

    taps: int = Field(ge=3, le=127)
    cutoff: float = Field(gt=0.0, lt=0.5, description="cut-off as a fraction of the sample rate")
    window: Literal["hamming", "hann", "blackman"]
    samples: int = Field(ge=1, le=1_000_000, description="random samples filtered in the tests")
    seed: Seed

    @model_validator(mode="after")
    def _odd_taps(self) -> FirFilterParams:
        if self.taps % 2 == 0:
            raise ValueError("taps must be odd (a symmetric, linear-phase filter)")
        return self


def fir_taps(taps: int, cutoff: float, window: str) -> list[int]:
    """Quantised Q15 taps of a windowed-sinc low-pass; they sum to exactly 1.0 (1 << 15)."""
    middle = (taps - 1) / 2
    windows: dict[str, Callable[[int], float]] = {
        "hamming": lambda n: 0.54 - 0.46 * math.cos(2 * math.pi * n / (taps - 1)),
        "hann": lambda n: 0.5 - 0.5 * math.cos(2 * math.pi * n / (taps - 1)),
        "blackman": lambda n: (
            0.42
            - 0.5 * math.cos(2 * math.pi * n / (taps - 1))
            + 0.08 * math.cos(4 * math.pi * n / (taps - 1))
        ),
    }
    ideal = []
    for n in range(taps):
        x = n - middle
        sinc = 2 * cutoff if x == 0 else math.sin(2 * math.pi * cutoff * x) / (math.pi * x)
        ideal.append(sinc * windows[window](n))
    total = sum(ideal)
    quantised = [round(value / total * (1 << Q_BITS)) for value in ideal]
    # Rounding leaves the sum a few LSB off unity gain; the centre tap absorbs the difference,
    # which keeps the taps symmetric and makes a constant input come out unchanged.
    quantised[taps // 2] += (1 << Q_BITS) - sum(quantised)
    return quantised


def _fir_filter_context(params: FirFilterParams) -> dict[str, Any]:
    return {"q_bits": Q_BITS, "tap_values": fir_taps(params.taps, params.cutoff, params.window)}


# -- debouncer -----------------------------------------------------------------------------


class DebouncerParams(Params):
    """An integrating debouncer for `channels` inputs sampled together as one bit mask."""

    channels: int = Field(ge=1, le=32)
    threshold: int = Field(ge=2, le=64, description="agreeing samples needed to change state")
    initial_mask: int = Field(ge=0)
    samples: int = Field(ge=1, le=1_000_000, description="random raw samples in the tests")
    seed: Seed

    @model_validator(mode="after")
    def _mask_fits(self) -> DebouncerParams:
        if self.initial_mask >= 1 << self.channels:
            raise ValueError("initial_mask has bits beyond the channel count")
        return self


def _debouncer_context(params: DebouncerParams) -> dict[str, Any]:
    return {"channel_mask": (1 << params.channels) - 1, "digits": max(2, -(-params.channels // 4))}


# -- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One pattern kind: its params model, its context builder and its two templates."""

    name: str
    params_model: type[Params]
    build_context: Callable[[Any], dict[str, Any]]

    @property
    def module_template(self) -> str:
        return f"{self.name}.py.j2"

    @property
    def test_template(self) -> str:
        return f"test_{self.name}.py.j2"

    @property
    def templates(self) -> tuple[str, str]:
        return (self.module_template, self.test_template)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("crc", CrcParams, _crc_context),
        Kind("debouncer", DebouncerParams, _debouncer_context),
        Kind("fir_filter", FirFilterParams, _fir_filter_context),
        Kind("fsm", FsmParams, _fsm_context),
        Kind("register_map", RegisterMapParams, _register_map_context),
        Kind("ring_buffer", RingBufferParams, _ring_buffer_context),
    )
}
