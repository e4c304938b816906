"""The model half's sections of the config tree: data, teacher, student, distill (edgekd.config re-exports them).

Strict pydantic models: a typo in a key is refused with the field's dotted path instead of being ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class CellDomainConfig(Strict):
    """How a synthetic cell source looks (edgekd.data.synthetic_cells.CellDomain): set it on a teacher pool
    (teacher.data.synthetic.domain) for a teacher trained on another distribution, as a public dataset differs
    from a lab's cells. The defaults are the lab's."""

    class_priors: tuple[float, float, float] | None = Field(
        None, description="shares of B, T4, T8 (summing to 1); default a near-equal split")
    brightness: float = Field(1.0, gt=0.0, le=4.0, description="gain on the whole frame (illumination)")
    gradient: float = Field(0.12, ge=0.0, le=0.5, description="largest illumination gradient across the frame")
    blur: tuple[float, float] = Field((0.3, 1.0), description="range (min, max) of the defocus sigma in px, 0-4")
    scale: float = Field(1.0, gt=0.0, le=4.0, description="gain on the cell radius (magnification)")
    noise: float = Field(1.0, gt=0.0, le=4.0, description="gain on shot and read noise")
    contrast: float = Field(1.0, gt=0.0, le=4.0, description="gain on the staining contrast of the cell's inside")

    @model_validator(mode="after")
    def _valid(self) -> "CellDomainConfig":  # the same rules as edgekd.data.synthetic_cells.CellDomain
        p = self.class_priors
        if p is not None and (min(p) < 0 or abs(sum(p) - 1.0) > 1e-6):
            raise ValueError(f"class_priors must be 3 shares (B, T4, T8) >= 0 summing to 1, got {list(p)}")
        if not 0.0 <= self.blur[0] <= self.blur[1] <= 4.0:
            raise ValueError(f"blur must be (min, max) with 0 <= min <= max <= 4 px, got {list(self.blur)}")
        return self


class SyntheticCellsConfig(Strict):
    """Synthetic bright-field lymphocyte generator (edgekd.data.synthetic_cells)."""

    n_train: int = Field(6000, ge=8, description="training images (before the validation split)")
    n_test: int = Field(2000, ge=8, description="test images")
    seed: int = Field(0, description="generator seed; same seed, same images")
    difficulty: float = Field(1.0, gt=0.0, le=3.0, description="scales class overlap; 1.0 = tuned default")
    domain: CellDomainConfig = Field(
        default_factory=lambda: CellDomainConfig(),
        description="class priors, illumination, blur, scale, noise, staining contrast (default: the lab's)")


class SyntheticSpeechConfig(Strict):
    """Synthetic speech-emotion corpus (edgekd.data.synthetic_speech); task: regression only."""

    n_train: int = Field(2000, ge=8, description="training clips (before the validation split)")
    n_test: int = Field(500, ge=8, description="test clips (from speakers unseen in training)")
    n_speakers: int = Field(60, ge=4, description="synthetic speakers; about a fifth are held out for test")
    clip_seconds: float = Field(2.0, gt=0.1, le=30.0, description="length of every clip")
    seed: int = Field(0, description="generator seed; same seed, same clips")
    label_noise: float = Field(0.05, ge=0.0, le=0.5, description="sd of the noise added to the annotated labels")
    snr_db: float = Field(20.0, description="median room-noise signal-to-noise ratio in dB")


class DataConfig(Strict):
    source: Literal["synthetic", "lymphomnist", "folder", "synthetic_speech", "audio_folder"] = "synthetic"
    path: Path | None = Field(None, description="LymphoMNIST IDX folder or image folder (one subfolder per class)")
    num_classes: int | None = Field(
        None, ge=2,
        description="classes of the task. Default: 2 for the cell sources (synthetic, lymphomnist: B vs T, T4 and T8 "
        "merged into T; 3 = B/T4/T8); for an image folder the number of class subfolders, except B/T4/T8 folders, "
        "which default to 2 (B vs T) as for the other cell sources. An image folder's value must be its number of "
        "class subfolders, or 2 for B/T4/T8 folders (the merge)",
    )
    channels: Literal[1, 3] = Field(
        1,
        description="image channels the students and the board see: 1 grey (colour files are converted to "
        "luminance), 3 colour (RGB; grey files are replicated into R = G = B); 3 needs data.source folder",
    )
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5)
    split_seed: int = 0
    max_train: int | None = Field(None, ge=8, description="use at most this many training images")
    max_test: int | None = Field(None, ge=8, description="use at most this many test images")
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5, description="image folders only: share held out as test")
    synthetic: SyntheticCellsConfig = SyntheticCellsConfig()
    augment: Literal["dihedral", "flips", "none", "auto"] | list[str] | None = Field(
        None,
        description="views that keep an image's label (edgekd.data.views): dihedral (the 8 rotations/flips), flips "
        "(identity and left-right mirror), none, a list of view names (flip_lr, flip_ud, rot90, rot180, rot270, "
        "transpose, antitranspose), or auto (chosen on validation by a logistic-regression probe, "
        "edgekd.data.augment_probe). The teacher, its annotations and distillation all use them. Default: dihedral for "
        "the cell sources (a cell has no orientation), none for image folders (a rotated 6 is a 9)",
    )
    # Label budget (edgekd.data.labels): which training labels are used; the teacher annotates all images.
    labelled: int | float | None = Field(
        None, description="training labels used: a fraction in (0, 1] or a whole count per class; default all"
    )
    unlabelled: Path | None = Field(
        None, description="images without labels added to the training pool: a folder of PNG/TIFF or an IDX file"
    )
    # audio (task: regression): edgekd.data.audio documents the windowing
    speech: SyntheticSpeechConfig = SyntheticSpeechConfig()
    csv: Path | None = Field(None, description="audio_folder: CSV with a `file` column; default PATH/labels.csv")
    window_seconds: float = Field(1.0, ge=0.01, le=30.0, description="audio: fixed window length (16 kHz samples)")
    window_hop_seconds: float | None = Field(None, gt=0.0, description="audio: hop between windows; default = window")

    @field_validator("labelled", mode="before")
    @classmethod
    def _no_bool_budget(cls, v: object) -> object:
        return cls._bad_budget(v) if isinstance(v, bool) else v  # YAML `yes` would pass as the count 1

    @field_validator("labelled")
    @classmethod
    def _label_budget(cls, v: int | float | None) -> int | float | None:
        if v is None:
            return None
        if isinstance(v, int) and v >= 1:
            return v
        if isinstance(v, float) and 0.0 < v <= 1.0:
            return v
        return cls._bad_budget(v)

    @staticmethod
    def _bad_budget(v: object) -> None:
        raise ValueError(f"{v!r}: give a fraction in (0, 1] (e.g. 0.05) or a whole count per class (e.g. 50)")

    @model_validator(mode="after")
    def _path_for_real_data(self) -> "DataConfig":
        if self.source not in ("synthetic", "synthetic_speech") and self.path is None:
            raise ValueError(f"data.path is required when data.source is '{self.source}'")
        return self

    @field_validator("augment")
    @classmethod
    def _known_views(cls, v: object) -> object:
        if isinstance(v, list):
            from edgekd.config_data import views_of

            views_of(v)  # raises ValueError naming the unknown view
        return v

    @model_validator(mode="after")
    def _augment_default(self) -> "DataConfig":
        if self.augment is None:  # resolved here, so the saved config states it
            self.__dict__["augment"] = "dihedral" if self.source in ("synthetic", "lymphomnist") else "none"
        return self

    @model_validator(mode="after")
    def _classes_and_channels(self) -> "DataConfig":
        # An image folder's classes are its subfolders (edgekd.data.cells.load_cell_splits resolves None there);
        # every other source keeps today's default, 2, so its resolved config (and hash) is unchanged.
        if self.source != "folder":
            if self.num_classes is None:
                self.__dict__["num_classes"] = 2
            if self.source in ("synthetic", "lymphomnist") and self.num_classes not in (2, 3):
                raise ValueError(
                    f"data.num_classes is {self.num_classes}, but data.source '{self.source}' has the cell classes "
                    "B/T4/T8: use 3, or 2 (B vs T); for other classes use data.source folder (one subfolder per class)"
                )
            if self.channels != 1:
                raise ValueError(
                    f"data.channels is {self.channels}, but data.source '{self.source}' is single-channel: colour "
                    "images need data.source folder (one subfolder of PNG/TIFF/JPEG images per class)"
                )
        return self


class Wav2VecTeacherConfig(Strict):
    """Built-in Wav2Vec2-style audio teacher (edgekd.teachers.wav2vec)."""

    conv_channels: int = Field(128, ge=8, description="channels of the convolutional feature encoder")
    dim: int = Field(160, ge=16, description="transformer width")
    layers: int = Field(4, ge=1, description="transformer encoder layers")
    heads: int = Field(4, ge=1, description="attention heads")


class TeacherConfig(Strict):
    source: Literal["train", "checkpoint", "torchscript", "onnx"] = Field(
        "train", description="train the built-in teacher here, or load one"
    )
    arch: str = Field("resnet", description="registered teacher architecture (train / checkpoint)")
    path: Path | None = Field(None, description="checkpoint (.pt state_dict), TorchScript or ONNX file")
    width: int = Field(32, ge=4, description="channels of the first ResNet stage (doubles per stage)")
    input_size: int = Field(
        64, ge=8,
        description="teacher input side in pixels; 64 for the cell sources, unless set the images' own side for an "
        "image folder (edgekd.config_data)",
    )
    # 8 epochs, batch 64, lr 4e-3: sized for a CPU budget. Choose them on the teacher pool's VALIDATION split,
    # never on test accuracy: benchmarks/kd_shift.py searches lr {2e-3, 4e-3} x epochs {4, 8} that way and
    # picked lr 4e-3 and 8 epochs for both of its teacher domains (the grid's edge: more epochs may pay).
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(4e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    min_epoch_images: int | None = Field(
        None, ge=0,
        description="an epoch draws at least this many images (small training sets get repeated passes, so the "
        "teacher gets the optimizer steps its recipe was tuned with); default 4096 for image folders, 0 (one pass) "
        "for the cell sources",
    )
    fine_labels: bool = Field(
        True,
        description="when the task merges classes (B vs T from B/T4/T8), train the teacher on the finer labels "
        "and merge its logits (log-sum-exp); a stronger teacher",
    )
    data: DataConfig | None = Field(
        None, description="train the teacher on this labelled pool (e.g. a public dataset) instead of the build's "
        "labelled images (or clips): a teacher trained elsewhere, as a lab with a pretrained teacher has it; refused when "
        "it holds the build's test data or the data whose labels data.labelled hides. Audio: a labelled speech corpus, "
        "cut into the build's windows (data.window_seconds, data.window_hop_seconds)",
    )
    wav2vec: Wav2VecTeacherConfig = Field(
        default_factory=lambda: Wav2VecTeacherConfig(), description="audio: the built-in Wav2Vec2-style teacher"
    )

    @model_validator(mode="after")
    def _path_for_loaded(self) -> "TeacherConfig":
        if self.source != "train" and self.path is None:
            raise ValueError(f"teacher.path is required when teacher.source is '{self.source}'")
        return self


class StudentConfig(Strict):
    name: str = Field("cell_cnn", description="registered student")
    input_size: int = Field(
        48, ge=8,
        description="student input side in pixels (images are resized); 48 for the cell sources, unless set for an image "
        "folder the images' own side, or the smallest side the student's layers take if that is larger "
        "(edgekd.config_data)",
    )
    channels: list[int] = Field([16, 16], min_length=1, description="output channels of each conv layer")
    kernel_sizes: list[int] = Field([3, 3], min_length=1, description="kernel size of each conv layer")
    pool: int = Field(2, ge=1, description="max-pool size after each conv (1 = none)")
    input_bits: int = Field(8, ge=2, le=16, description="bits of the input quantizer")
    input_max: float = Field(
        4.0, gt=0, description="input quantizer covers [-input_max, input_max) (rounded up to a power of two)"
    )
    weight_bits: int | list[int] = Field(8, description="weight bits, one value or one per layer")
    act_bits: int | list[int] = Field(8, description="activation bits after each conv, one value or one per conv")
    bias_bits: int = Field(16, ge=4, le=32)
    output_bits: int = Field(16, ge=4, le=32, description="bits of the logits quantizer")
    width: int = Field(
        13, ge=1, le=256,
        description="wav2small / wav2small_hw: channels of the conv stack l1-l7 (13 = the ~17K release, "
        "34 = the paper's ~72K); unused by cell_cnn",
    )
    input_block: Literal[1, 2, 4] = Field(
        1,
        description="cell_cnn: read the image as k x k pixel blocks per stream item (space-to-depth): the "
        "network reads H*W/k^2 items and its first conv sees k^2 x channels; the pixel-stream top packs the "
        "grabber's pixels into blocks",
    )
    hw_pool_after: list[int] = Field(
        [1, 3], min_length=1, max_length=3,
        description="wav2small_hw: conv layers (1-7) followed by a 2x2 max pool; [3] pools where Wav2Small does, "
        "[1, 3] (default) has ~4x fewer MACs (C-simulation, QAT and FPGA latency); unused by the other students",
    )
    hw_head_hidden: int = Field(
        16, ge=0, le=1024,
        description="wav2small_hw: hidden units of the Dense + ReLU layer that stands in for the Gram features "
        "(0 = one Linear head); unused by the other students",
    )

    @field_validator("hw_pool_after")
    @classmethod
    def _hw_pools(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or not all(1 <= i <= 7 for i in v):
            raise ValueError(f"student.hw_pool_after takes distinct conv layer numbers 1-7, got {v}")
        return sorted(v)

    # Bring your own model (edgekd.export.byo): a QONNX file instead of a registered student; the build
    # then runs only export (check + prepare) -> hls -> project -> report, and the fields above are unused.
    qonnx: Path | None = Field(None, description="your quantized model (QONNX .onnx); relative to the config file")
    inputs: Path | None = Field(
        None, description="with qonnx: .npy of real inputs (N, *input shape), put on the input grid; default random"
    )
    random_inputs: int = Field(256, ge=1, le=100000, description="with qonnx and no inputs: random inputs on the grid")
    allow_inexact: bool = Field(
        False, description="with qonnx: convert a model that cannot be exact and report the measured mismatch"
    )

    @model_validator(mode="after")
    def _per_layer_lengths(self) -> "StudentConfig":
        if len(self.kernel_sizes) != len(self.channels):
            raise ValueError(
                f"student.kernel_sizes has {len(self.kernel_sizes)} entries but student.channels has "
                f"{len(self.channels)}: give one kernel size per conv layer"
            )
        n_layers = len(self.channels) + 1
        if isinstance(self.weight_bits, list) and len(self.weight_bits) != n_layers:
            raise ValueError(f"student.weight_bits needs {n_layers} values (each conv + the dense layer)")
        if isinstance(self.act_bits, list) and len(self.act_bits) != len(self.channels):
            raise ValueError(f"student.act_bits needs {len(self.channels)} values (one per conv layer)")
        for bits in ([self.weight_bits] if isinstance(self.weight_bits, int) else self.weight_bits) + (
            [self.act_bits] if isinstance(self.act_bits, int) else self.act_bits
        ):
            if not 2 <= bits <= 16:
                raise ValueError(f"bit widths must be between 2 and 16, got {bits}")
        return self

    @model_validator(mode="after")
    def _input_divides_into_blocks(self) -> "StudentConfig":
        if self.input_size % self.input_block:
            raise ValueError(
                f"student.input_size {self.input_size} is not a multiple of student.input_block {self.input_block}: "
                f"the image splits into {self.input_block}x{self.input_block} pixel blocks (e.g. input_size "
                f"{self.input_size - self.input_size % self.input_block})"
            )
        return self


class DistillConfig(Strict):
    loss: str = Field("kd", description="registered distillation loss")
    temperature: float = Field(
        2.0, gt=0, description="KD temperature (a starting point, not tuned on test): choose it and alpha on the "
        "validation split, as benchmarks/kd_shift.py does",
    )
    alpha: float = Field(
        0.9, ge=0, le=10,
        description="weight xi of the teacher term; (1 - alpha) weighs CE on labels. Above 1 (label-noise "
        "self-distillation setting) the labels term is subtracted",
    )
    epochs: int = Field(30, ge=1, description="epochs of the float phase (its result is the float reference)")
    qat_epochs: int = Field(4, ge=0, description="quantization-aware epochs, starting from the float weights")
    batch_size: int = Field(128, ge=1)
    lr: float = Field(3e-3, gt=0, description="peak learning rate of the float phase (one-cycle schedule)")
    qat_lr: float = Field(1e-3, gt=0, description="peak learning rate of the quantization-aware phase")
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 0
    baseline: bool = Field(True, description="also train the same student on labels alone")
    augment: bool = Field(
        True, description="train on the data's label-preserving views of each image (data.augment), with the "
        "teacher's logits for each view; false: the images as they are"
    )
    dts: "DTSConfig" = Field(default_factory=lambda: DTSConfig(), description="loss dts: temperature scheduler")
    pld: "PLDConfig" = Field(default_factory=lambda: PLDConfig(), description="loss pld: Plackett-Luce")
    ofa: "OFAConfig" = Field(default_factory=lambda: OFAConfig(), description="loss ofa: One-for-All heads")
    fm: "FunctionMatchingConfig" = Field(
        default_factory=lambda: FunctionMatchingConfig(), description="loss function_matching: Beyer et al. 2022"
    )


class DTSConfig(Strict):
    """Dynamic Temperature Scheduler (loss `dts`); defaults are the paper's."""

    t0: float = Field(4.0, gt=0, description="initial temperature of the cosine schedule")
    t_min: float = Field(2.0, gt=0, description="lower clamp of the temperature")
    t_max: float = Field(4.0, gt=0, description="upper clamp of the temperature")
    ce_weight: float = Field(0.1, ge=0, description="weight of CE on labels")
    kd_weight: float = Field(0.9, ge=0, description="weight of the T^2 KL term")
    momentum: float = Field(0.9, ge=0, lt=1, description="T <- momentum T + (1 - momentum) T* every iteration")

    @model_validator(mode="after")
    def _ordered(self) -> "DTSConfig":
        if self.t_min > self.t_max:
            raise ValueError(f"distill.dts.t_min ({self.t_min}) must not exceed distill.dts.t_max ({self.t_max})")
        return self


class PLDConfig(Strict):
    """Plackett-Luce distillation (loss `pld`)."""

    tau: float = Field(1.0, gt=0, description="temperature of the teacher softmax that weighs each rank")


class OFAConfig(Strict):
    """One-for-All feature distillation (loss `ofa`): heads on intermediate features, training only."""

    eps: float = Field(1.0, gt=0, description="exponent on (p_teacher + 1) of the target class (1 = plain soft CE)")
    temperature: float = Field(1.0, gt=0, description="softmax temperature of the OFA terms")
    weight: float = Field(1.0, ge=0, description="weight of the summed OFA terms (final logits and every head)")
    ce_weight: float = Field(1.0, ge=0, description="weight of CE on labels (final logits)")
    head_channels: int = Field(32, ge=1, description="channels of each head's conv before pooling")


class FunctionMatchingConfig(Strict):
    """Function matching (loss `function_matching`, Beyer et al. 2022): the teacher runs online on the student's
    own augmented, mixed-up view; defaults are the paper's (pure KL at T = 1, mixup)."""

    mixup: float = Field(1.0, ge=0, description="mixing coefficient ~ Beta(mixup, mixup) per batch; 0 = no mixing")
    temperature: float = Field(1.0, gt=0, description="softmax temperature of the KL term")
    label_weight: float = Field(
        0.0, ge=0, le=1, description="weight w of mixup CE on labels; (1 - w) weighs the T^2 KL to the teacher"
    )
