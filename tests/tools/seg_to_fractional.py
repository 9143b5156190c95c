#!/usr/bin/env python3
"""Test tooling: rewrites a BINARY DICOM SEG as FRACTIONAL (PROBABILITY, 8-bit, Maximum
Fractional Value 200): set pixels become 100 (exactly half: inside) and unset pixels 99
(just below half: outside), so a correct reader finds the same voxels as in the original.

usage: seg_to_fractional.py IN.dcm OUT.dcm      Exit 77 when pydicom or numpy is missing."""
import sys

try:
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid
except ImportError as e:
    print("seg_to_fractional.py: %s" % e, file=sys.stderr)
    sys.exit(77)

src, out = sys.argv[1:3]
ds = pydicom.dcmread(src)
assert ds.SegmentationType == "BINARY"
n, rows, cols = int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)
bits = np.unpackbits(np.frombuffer(ds.PixelData, dtype=np.uint8), bitorder="little")[: n * rows * cols]
frac = np.where(bits > 0, 100, 99).astype(np.uint8)
ds.SegmentationType = "FRACTIONAL"
ds.SegmentationFractionalType = "PROBABILITY"
ds.MaximumFractionalValue = 200
ds.BitsAllocated = ds.BitsStored = 8
ds.HighBit = 7
ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.PixelData = frac.tobytes() + (b"\0" if frac.size % 2 else b"")
ds["PixelData"].VR = "OB"
ds.save_as(out, write_like_original=False)
print(int((bits > 0).sum()))
