"""Files on disk, read and written on the host: no equations here, host NumPy arrays by design.

- `files`: open only regular files; write atomically, never over a device or a FIFO;
- `streams`: read (possibly gzipped) data without allocating ahead of what is really there;
- `npz`: the zip and `.npy` layers of a checkpoint, trusting nothing the file declares;
- `idx`, `book_pickle` and `pickled_arrays`: MNIST's IDX files and Nielsen's `mnist.pkl.gz`.

The public faces are `bpgpu.checkpoint` (`save`, `load`) and `bpgpu.mnist` (`load_mnist`).
"""
