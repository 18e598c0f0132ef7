"""The version of bpgpu, in one place: the package, its checkpoints and the build read it here."""

__version__ = "0.1.0"
