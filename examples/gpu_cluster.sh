#!/usr/bin/env bash
# A small dask.distributed cluster: one scheduler, CPU workers for reading,
# classifying and writing, GPU workers for restoration. Run each line on the
# machine named in its comment; the output folder must be a path every
# worker can write (a shared filesystem). SCHEDULER is the scheduler's
# address on a private network: anyone who reaches its port runs code on the
# workers (use TLS, see the README's Security paragraph, on any other network).
set -euo pipefail

# scheduler machine: listen on the private interface only, no dashboard
dask scheduler --host SCHEDULER --port 8786 --no-dashboard &

# each CPU machine: as many single-threaded workers as it has cores
dask worker tcp://SCHEDULER:8786 --nworkers auto --nthreads 1 &

# each GPU machine: one worker per GPU with four threads and four GPU slots, so that
# one restore task's reading, consistency check and blending (CPU) overlap another's
# network (GPU); benchmarks/gpu.py measures how busy that keeps the GPU
CUDA_VISIBLE_DEVICES=0 dask worker tcp://SCHEDULER:8786 --nthreads 4 --resources GPU=4 &

# any machine with the slides and the shared output folder
wsi-deblur run /data/slides/ -o /shared/out --scheduler tcp://SCHEDULER:8786 --gpu
