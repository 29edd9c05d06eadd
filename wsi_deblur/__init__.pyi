# What `import wsi_deblur` offers, for editors and type checkers: the names are imported on first use
# (wsi_deblur/__init__.py), so that the package and `wsi-deblur --help` load no torch, dask or zarr.
from wsi_deblur.adaptation.calibration import CalibrateOptions as CalibrateOptions
from wsi_deblur.adaptation.calibration import calibrate as calibrate
from wsi_deblur.adaptation.job import adapt as adapt
from wsi_deblur.adaptation.options import AdaptOptions as AdaptOptions
from wsi_deblur.blurmap import BlurMap as BlurMap
from wsi_deblur.errors import SlideError as SlideError
from wsi_deblur.io import Slide as Slide
from wsi_deblur.io import open_slide as open_slide
from wsi_deblur.pipeline.batch import BatchOutcome as BatchOutcome
from wsi_deblur.pipeline.batch import process_batch as process_batch
from wsi_deblur.pipeline.options import RunOptions as RunOptions
from wsi_deblur.pipeline.scheduler import use_scheduler as use_scheduler
from wsi_deblur.pipeline.slide_job import SlideResult as SlideResult
from wsi_deblur.pipeline.slide_job import compute_blurmap as compute_blurmap
from wsi_deblur.pipeline.slide_job import process_slide as process_slide
from wsi_deblur.pipeline.watch import watch_folder as watch_folder

__version__: str
__all__: list[str]
