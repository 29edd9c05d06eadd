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

# each GPU machine: one worker per GPU, one thread, advertising the resource
CUDA_VISIBLE_DEVICES=0 dask worker tcp://SCHEDULER:8786 --nthreads 1 --resources GPU=1 &

# any machine with the slides and the shared output folder
wsi-deblur run /data/slides/ -o /shared/out --scheduler tcp://SCHEDULER:8786 --gpu
