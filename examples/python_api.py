"""Using wsi-deblur from Python (a notebook, a script), not the command line.

    python examples/python_api.py SLIDE [OUT]

Opens a slide, looks at it, computes its blur map without writing anything,
then processes it fully into OUT (default out/example).
"""

import sys

from wsi_deblur import RunOptions, compute_blurmap, open_slide, process_slide, use_scheduler


def main(path: str, out: str = "out/example") -> None:
    slide = open_slide(path)  # pass mpp=0.25 for a camera image without a pixel size
    print(slide)

    options = RunOptions(tile_size=512, min_confidence=0.6, tiff_compression="deflate")
    with use_scheduler(None):  # "local" for a LocalCluster, or "tcp://host:8786"
        qc = compute_blurmap(slide, options)
        blurmap = qc.blurmap
        print(f"tissue: {qc.tissue_area_fraction:.1%} of the slide; "
              f"blur classes of tissue tiles: {blurmap.class_fractions()}")
        print("tiles to restore:", int(blurmap.restore_mask(min_confidence=options.min_confidence).sum()))

        result = process_slide(path, out, options)
    for p in result.outputs:
        print(p)


if __name__ == "__main__":
    main(*sys.argv[1:])
