"""`python -m bpgpu ...` is the `bpgpu` command."""

from .cli import main

raise SystemExit(main())
