"""The one config tree of a build (pydantic). YAML in; unknown keys and bad values are errors.

Every section is a strict model: a typo in a key is refused with the field's dotted path instead of
being silently ignored. `load_config` is the only entry point that reads user files; it uses
`yaml.safe_load` so a config can never execute code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from edgekd.errors import ConfigError  # noqa: F401 - raised by the config tree; importers also find it here
from edgekd.hashing import sha256_json  # noqa: F401 - part of this module's interface
from edgekd.io import read_yaml
from pydantic import Field, ValidationError, field_validator, model_validator


from edgekd.config_sections import (  # noqa: F401 - the model half's sections, part of this module's interface
    Strict,
    SyntheticCellsConfig,
    SyntheticSpeechConfig,
    DataConfig,
    Wav2VecTeacherConfig,
    TeacherConfig,
    StudentConfig,
    DistillConfig,
    DTSConfig,
    PLDConfig,
    OFAConfig,
    FunctionMatchingConfig,
)


# Largest LUT fraction the fit search gives a design for an open board (toolchain: open), by default
OPEN_PNR_LUT_LIMIT = 0.5


class HLSConfig(Strict):
    board: str = Field(
        "frame-grabber-ku035", description="built-in board (hw/boards/NAME.yaml) or a path to a board YAML file"
    )
    backend: Literal["Vitis", "Vivado"] = "Vitis"
    io_type: Literal["io_stream", "io_parallel"] = "io_stream"
    part: str | None = Field(None, description="FPGA part; default: the board's")
    clock_period_ns: float | None = Field(None, gt=0, description="target clock period; default: the board's clock")
    reuse_factor: Literal["auto"] | int | dict[str, Literal["auto"] | int] = Field(
        "auto",
        description="hls4ml reuse factor: 'auto' (chosen per layer by edgekd.hls.fit: the lowest estimated "
        "latency that fits hls.max_utilization), one integer for every layer, or {layer name: int | 'auto'} "
        "(layers not named: auto); names as in the report's hls section",
    )
    strategy: Literal["auto", "Latency", "Resource", "distributed_arithmetic"] = Field(
        "auto",
        description="hls4ml strategy; 'auto' lets the fit search choose per layer among Latency, Resource and "
        "distributed_arithmetic (da4ml shift-and-add networks)",
    )
    max_utilization: float | dict[str, float] = Field(
        0.8,
        description="largest estimated fraction of each board resource (lut, ff, dsp, bram_18k, uram) the design "
        "may use: one fraction for all, or {resource: fraction} (unnamed resources: 0.8)",
    )
    on_overflow: Literal["fail", "warn"] = Field(
        "fail",
        description="a design that cannot fit at any setting: 'fail' stops the hls step (exit 1) naming the "
        "binding layer and resource; 'warn' writes the project anyway and says so in the report",
    )
    verify_samples: int = Field(256, ge=1, description="test images checked bit for bit in C-simulation")
    max_parallel_products: int = Field(
        16384, ge=0,
        description="io_parallel: refuse a layer with more multiplications per image than this before hls4ml "
        "generates code (the cell student's first conv has 304,704; its io_parallel compile takes over 10 min); 0 = no limit",
    )
    trigger_threshold: float | None = Field(
        None, description="frame grabber: sort trigger fires when logit[class] - largest other logit >= this; "
        "default: chosen with the class on the validation split (edgekd.project.trigger.choose_trigger)"
    )
    trigger_class: int | None = Field(
        None, ge=0, description="frame grabber: trigger only for this class (default: chosen on validation when "
        "trigger_threshold is unset, else any class)")
    trigger_target_precision: float = Field(
        0.95, gt=0, le=1, description="frame grabber, default trigger: the validation precision the chosen class "
        "and threshold must reach (the one with the highest recall among those that do)")

    @field_validator("reuse_factor")
    @classmethod
    def _reuse_factors(cls, v: Any) -> Any:
        for name, rf in (v.items() if isinstance(v, dict) else [("", v)]):
            if isinstance(rf, int) and rf < 1:
                where = f" for layer '{name}'" if name else ""
                raise ValueError(f"reuse factor{where} must be greater than or equal to 1 (got {rf}), or 'auto'")
        return v

    @field_validator("max_utilization")
    @classmethod
    def _utilization(cls, v: Any) -> Any:
        items = v.items() if isinstance(v, dict) else [("all", v)]
        for key, frac in items:
            if key not in ("all", "lut", "ff", "dsp", "bram_18k", "uram"):
                raise ValueError(f"unknown resource '{key}'; use lut, ff, dsp, bram_18k or uram")
            if not 0 < frac <= 1.0:
                raise ValueError(f"max_utilization for {key} must be in (0, 1] (got {frac})")
        return v

    def utilization_limit(self, resource: str) -> float:
        """Largest fraction of `resource` the design may use."""
        if isinstance(self.max_utilization, dict):
            return float(self.max_utilization.get(resource, 0.8))
        return float(self.max_utilization)

    @model_validator(mode="after")
    def _defaults_from_board(self) -> "HLSConfig":
        # Resolved once, at load time: the saved config then states the part and clock it built for.
        from edgekd.hw import BoardError, load_board

        try:
            board = load_board(self.board)
        except BoardError:
            if self.part is None or self.clock_period_ns is None:
                raise
            return self  # a saved config that states its part and clock needs its board file no more
        if self.part is None:
            self.__dict__["part"] = board.part
        if self.clock_period_ns is None:
            self.__dict__["clock_period_ns"] = board.clock_period_ns
        if board.is_open and "max_utilization" not in self.model_fields_set:
            # open place and route (nextpnr-ecp5) does not finish above about half of an 85F's logic on 2 cores
            # (REFERENCE section 8): the fit search keeps the LUTs there unless the config says otherwise
            self.__dict__["max_utilization"] = {"lut": OPEN_PNR_LUT_LIMIT}
        return self

    @property
    def clock_mhz(self) -> float:
        return 1000.0 / self.clock_period_ns


class RTLConfig(Strict):
    """The RTL backend (edgekd.rtl): Verilog from the hardware contract, Verilator-simulated, Yosys-synthesised."""

    enabled: bool = Field(False, description="run the rtl step (generation, Verilator simulation, Yosys synthesis)")
    family: Literal["auto", "xcu", "xcup", "xc7", "ecp5"] = Field(
        "auto", description="synthesis family: 'auto' = from the board's part (xcku -> xcu, xczu/xcu2xx -> xcup, "
        "xc7 -> xc7, LFE5 -> ecp5)")
    pixels_per_beat: int = Field(1, ge=1, description="network pixels (all channels) per s_axis beat of the top")
    lanes: int | Literal["auto"] = Field(
        "auto", description="network pixels per clock through the first layers (a window and a kernel per lane, "
        "down to the first horizontal stride of at least the lanes): 'auto' = on a pixel-stream board the fewest "
        "that keep up with its pixels per clock (the cell student's 2x2 blocks at 8 pixels per clock: 2), else 1")
    pixel_top: bool = Field(True, description="pixel-stream boards: also generate and simulate the camera top "
                            "(framing, k x k blocks, decision word as the HLS board project)")
    latency_cutoff: float = Field(3.0, gt=0, description="alkaid adder delays per pipeline stage (lower: more "
                                  "stages, higher clock, more registers)")
    reuse: Literal["auto"] | int | dict[str, int] = Field(
        "auto", description="time-multiplexed dense (MatMul/Gemm) layers (edgekd.rtl.reuse): 'auto' (on an open "
        "board the fit search chooses per dense layer: the lowest latency whose RTL design fits under "
        "bitstream.max_utilisation, edgekd.estimate.rtl_fit; elsewhere 1), a reuse factor R for every "
        "dense layer, or {QONNX node name: R} (unnamed layers 1); R > 1 computes the layer's products over R cycles "
        "on ceil(n_in*n_out/R) multipliers with the weights in a ROM, a vector every R cycles (II = R); 1 = fully "
        "unrolled constant multipliers. R must be r_in x r_out with r_in = gcd(R, n_in) and r_out <= n_out "
        "(checked per layer when the RTL is generated)")
    synthesize: bool = Field(True, description="run Yosys on the generated top (minutes on large designs)")

    @field_validator("reuse")
    @classmethod
    def _reuse_positive(cls, v: Any) -> Any:
        if v == "auto":
            return v
        items = v.items() if isinstance(v, dict) else [("", v)]
        for name, r in items:
            if isinstance(r, bool) or int(r) < 1:
                where = f" for layer {name}" if name else ""
                raise ValueError(f"rtl.reuse{where}: {r} is not a reuse factor (an integer >= 1; 1 = fully unrolled)")
        return v
    simulate_split: bool = Field(True, description="also simulate the whole test split (image builds), not "
                                 "only the verification sample")


class BitstreamConfig(Strict):
    """The open flow for boards with `toolchain: open` (edgekd.openfpga): self-test top, Verilator, Yosys,
    nextpnr-ecp5, ecppack. Step `bitstream`, after the rtl step, on open boards only."""

    enabled: bool = Field(True, description="write a bitstream when the rtl step runs for an open board")
    seed: int = Field(1, description="nextpnr's placer seed (reruns with the same seed give the same bitstream)")
    clock_mhz: float | None = Field(None, gt=0, le=500, description="clock constraint; default: the board's clock")
    timeout_minutes: float = Field(60, gt=0, description="per tool; nextpnr on large designs takes many minutes")
    max_utilisation: float = Field(
        0.5, gt=0, le=1.0, description="largest fraction of the part's logic slots (Yosys LUT4 + 2 per carry cell) "
        "handed to nextpnr: above about half of an 85F it does not finish on 2 cores")
    on_timing_miss: Literal["refuse", "write"] = Field(
        "refuse", description="a routed design slower than the clock: refuse (report the clock it meets, no "
        "bitstream) or write the bitstream anyway (flagged in the report)")


class BuildConfig(Strict):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="build name; build/<name>/ by default")
    task: Literal["classification", "regression"] = Field(
        "classification", description="classification (cells) or regression (speech emotion A/D/V)"
    )
    seed: int = 0
    data: DataConfig = DataConfig()
    teacher: TeacherConfig = TeacherConfig()
    student: StudentConfig = StudentConfig()
    distill: DistillConfig = DistillConfig()
    hls: HLSConfig = HLSConfig()
    rtl: RTLConfig = RTLConfig()
    bitstream: BitstreamConfig = BitstreamConfig()

    @model_validator(mode="after")
    def _data_defaults(self) -> "BuildConfig":
        # image sizes and the teacher's epoch from the data (edgekd.config_data); stated in the saved config
        from edgekd.config_data import resolve_input_sizes

        resolve_input_sizes(self)
        if self.teacher.min_epoch_images is None:
            self.teacher.__dict__["min_epoch_images"] = FOLDER_MIN_EPOCH_IMAGES if self.data.source == "folder" else 0
        return self

    @model_validator(mode="after")
    def _validation_exists(self) -> "BuildConfig":
        # every student (and the labels-only baseline) keeps its best epoch on validation: without validation
        # images every epoch would score 0 and training would return the first epoch's weights
        if self.student.qonnx is None and self.data.val_fraction == 0:
            raise ValueError(
                "data.val_fraction is 0: the student would have no validation images to choose its epoch on (every "
                "epoch would score 0 and the first epoch's weights would be kept); give a fraction such as 0.1 "
                "(with data.labelled: the share of the labelled images held out for validation)"
            )
        return self

    @model_validator(mode="after")
    def _task_defaults(self) -> "BuildConfig":
        audio = self.data.source in AUDIO_SOURCES
        # a bring-your-own QONNX model (student.qonnx) reads no data: its task only says if it is a classifier
        if audio != (self.task == "regression") and self.student.qonnx is None:
            raise ValueError(
                f"data.source '{self.data.source}' does not fit task '{self.task}': task regression takes "
                f"data.source {' or '.join(AUDIO_SOURCES)}, task classification the image sources"
            )
        if self.task == "regression":  # audio defaults, unless the config set the key
            if "loss" not in self.distill.model_fields_set:
                self.distill.__dict__["loss"] = "ccc"
            if "arch" not in self.teacher.model_fields_set:
                self.teacher.__dict__["arch"] = "wav2vec2"
            if "name" not in self.student.model_fields_set:
                self.student.__dict__["name"] = "wav2small_hw"
            if "augment" not in self.distill.model_fields_set:
                self.distill.__dict__["augment"] = False
            if self.distill.loss not in ("ccc", "mse", "ccc_mse"):
                raise ValueError(f"distill.loss '{self.distill.loss}' is not a regression loss; use ccc, mse or ccc_mse")
        return self

    @model_validator(mode="after")
    def _open_board_steps(self) -> "BuildConfig":
        # an open board (toolchain: open) has no vendor project: its bitstream comes from the rtl step's Verilog
        # (steps rtl -> bitstream), so rtl is on unless the config says otherwise (then it must say no bitstream)
        if not _is_open_board(self):
            return self
        if "enabled" not in self.rtl.model_fields_set:
            self.rtl.__dict__["enabled"] = True
        elif not self.rtl.enabled and self.bitstream.enabled:
            raise ValueError(
                f"rtl.enabled: false, but hls.board {self.hls.board} is an open board (toolchain: open) whose "
                "bitstream is built from the rtl step's Verilog (steps rtl -> bitstream); set rtl.enabled: true, or "
                "bitstream.enabled: false to build no bitstream")
        return self

    @field_validator("name")
    @classmethod
    def _no_dots_only(cls, v: str) -> str:
        if set(v) <= {"."}:
            raise ValueError("name must not be only dots")
        return v

    def section_sha256(self, *sections: str) -> str:
        """Hash of the given top-level sections (the slice of config a step depends on)."""
        payload = {s: self.model_dump(mode="json")[s] for s in sections}
        return sha256_json(payload)

    def sha256(self) -> str:
        return sha256_json(self.model_dump(mode="json"))


def _is_open_board(cfg: "BuildConfig") -> bool:
    """The build's board has `toolchain: open`; a saved config whose board file is gone: an ECP5 hls.part."""
    from edgekd.hw import BoardError, load_board

    try:
        return load_board(cfg.hls.board).is_open
    except BoardError:
        return (cfg.hls.part or "").lower().startswith("lfe5")


def bitstream_enabled(cfg: "BuildConfig") -> bool:
    """Whether a build of `cfg` runs the bitstream step: an open board, the rtl step on, bitstream.enabled."""
    return cfg.rtl.enabled and cfg.bitstream.enabled and _is_open_board(cfg)


AUDIO_SOURCES = ("synthetic_speech", "audio_folder")
# The teacher recipe's rule for small data (teacher.min_epoch_images): an epoch draws at least 4096 images, so a
# folder of 1,300 training images gets about 3 passes per epoch and 512 optimizer steps in the default 8 epochs
# at batch 64 (the cell default gets 680 from its 5,400 images), not 168. Measured on scikit-learn's digits at 8 px
# without rotation views (seed 0): 98.89% test accuracy at 512 steps, 98.33% at 168 (validation 85.4% after the
# first epoch against 93.8%): a small gain here, a safeguard for smaller folders and fewer epochs.
FOLDER_MIN_EPOCH_IMAGES = 4096


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the config reference in README.md)"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: object, source: str = "<config>", base_dir: Path | None = None) -> BuildConfig:
    """Validate a parsed YAML/JSON mapping; relative paths resolve against `base_dir`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values")
    hls = data.get("hls")
    if base_dir is not None and isinstance(hls, dict) and isinstance(hls.get("board"), str):
        board = Path(hls["board"])
        if board.suffix in (".yaml", ".yml") and not board.is_absolute():  # a board file beside the config
            data = {**data, "hls": {**hls, "board": str((base_dir / board).resolve())}}
    try:
        cfg = BuildConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
    if base_dir is not None:
        for data_cfg in (cfg.data, cfg.teacher.data):
            for key in ("path", "csv", "unlabelled"):
                value = getattr(data_cfg, key) if data_cfg is not None else None
                if value is not None and not value.is_absolute():
                    setattr(data_cfg, key, (base_dir / value).resolve())
        if cfg.data.source == "folder":  # the folder's image size, now that its path is known
            from edgekd.config_data import resolve_input_sizes

            resolve_input_sizes(cfg)
        if cfg.teacher.path is not None and not cfg.teacher.path.is_absolute():
            cfg.teacher.path = (base_dir / cfg.teacher.path).resolve()
        for key in ("qonnx", "inputs"):
            value = getattr(cfg.student, key)
            if value is not None and not value.is_absolute():
                setattr(cfg.student, key, (base_dir / value).resolve())
    if cfg.student.qonnx is not None or cfg.student.inputs is not None:
        from edgekd.export.byo import validate_byo_student  # loads onnx only for such configs

        validate_byo_student(cfg.student, source)
    return cfg


def load_config(path: Path | str) -> BuildConfig:
    path = Path(path)
    data = read_yaml(path, ConfigError, "config")
    return parse_config(data, source=str(path), base_dir=path.parent)


def load_config_with_board(path: Path | str, board_file: Path | str) -> BuildConfig:
    """`load_config`, with hls.board replaced by a board file (`edgekd build --board-file`).

    The part and clock then default to that board's, unless the config sets hls.part / hls.clock_period_ns.
    """
    path, board_file = Path(path), Path(board_file)
    if not board_file.is_file():
        raise ConfigError(f"--board-file {board_file}: no such file")
    data = read_yaml(path, ConfigError, "config")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    hls = data.get("hls") or {}
    if not isinstance(hls, dict):
        raise ConfigError(f"{path}: hls must be a mapping")
    data = {**data, "hls": {**hls, "board": str(board_file.resolve())}}
    return parse_config(data, source=f"{path} (--board-file {board_file})", base_dir=path.parent)


def dump_config(cfg: BuildConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
