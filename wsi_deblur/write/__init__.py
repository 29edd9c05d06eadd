"""Writers: pyramidal OME-Zarr, pyramidal OME-TIFF, and atomic output names."""
