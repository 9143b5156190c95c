#!/usr/bin/env python3
"""Test tooling: writes a minimal BINARY DICOM SEG holding one label of a NIfTI label map
(gzip NIfTI-1 with an sform, uint8/int16/uint16 data) as one segment, on the grid of a
single-frame DICOM CT series. The label map must lie on the CT grid (checked to 0.01 mm).

usage: seg_from_nifti.py CT_DIR LABELS.nii.gz LABEL_ID SEGMENT_LABEL OUT.dcm
Exit 77 (CTest skip) when pydicom or numpy is missing. Independent of spinemets' own
readers: geometry from the DICOM headers and the NIfTI sform only."""
import glob
import gzip
import os
import struct
import sys

try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
except ImportError as e:
    print("seg_from_nifti.py: %s" % e, file=sys.stderr)
    sys.exit(77)


def read_nifti(path):
    b = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    assert struct.unpack("<i", b[:4])[0] == 348, "NIfTI-1 only"
    dim = struct.unpack("<8h", b[40:56])
    dtype = {2: np.uint8, 4: np.int16, 512: np.uint16}[struct.unpack("<h", b[70:72])[0]]
    off = int(struct.unpack("<f", b[108:112])[0])
    assert struct.unpack("<h", b[254:256])[0] > 0, "sform required"
    srow = np.array(struct.unpack("<12f", b[280:328]), dtype=float).reshape(3, 4)
    n = dim[1] * dim[2] * dim[3]
    data = np.frombuffer(b, dtype=dtype, count=n, offset=off).reshape(dim[3], dim[2], dim[1])  # [k][j][i]
    aff = np.vstack([srow, [0, 0, 0, 1]])
    aff[:2, :] *= -1  # RAS -> LPS
    return data, aff


def main():
    ct_dir, nii, label, seg_label, out = sys.argv[1:6]
    label = int(label)
    data, aff = read_nifti(nii)
    inv = np.linalg.inv(aff)
    cts = [pydicom.dcmread(f) for f in sorted(glob.glob(os.path.join(ct_dir, "*")))]
    cts = [d for d in cts if "ImagePositionPatient" in d]
    ref = cts[0]
    rows, cols = int(ref.Rows), int(ref.Columns)
    iop = np.array(ref.ImageOrientationPatient, dtype=float)
    ps = np.array(ref.PixelSpacing, dtype=float)
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    frames, positions = [], []
    for d in cts:
        ipp = np.array(d.ImagePositionPatient, dtype=float)
        lps = ipp[None, None, :] + cc[..., None] * ps[1] * iop[None, None, :3] + rr[..., None] * ps[0] * iop[None, None, 3:]
        ijk = lps @ inv[:3, :3].T + inv[:3, 3]
        idx = np.rint(ijk).astype(int)
        assert np.abs((idx - ijk) * np.abs(np.diag(aff)[:3])).max() < 0.01, "label map is not on the CT grid"
        mask = data[idx[..., 2], idx[..., 1], idx[..., 0]] == label
        if mask.any():
            frames.append(mask)
            positions.append(ipp)
    assert frames, "label %d not found" % label

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(out, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
               "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID"):
        setattr(ds, kw, ref.get(kw, ""))
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 300
    ds.InstanceNumber = 1
    ds.Manufacturer = "spinemets tests"
    ds.ManufacturerModelName = "seg_from_nifti.py"
    ds.DeviceSerialNumber = "1"
    ds.SoftwareVersions = "1"
    ds.ContentDate, ds.ContentTime = "20260101", "000000"
    ds.ContentLabel = "VERTEBRA"
    ds.ContentDescription = "test segmentation"
    ds.ContentCreatorName = "test"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.SegmentationType = "BINARY"
    ds.NumberOfFrames = len(frames)
    ds.DimensionOrganizationSequence = [Dataset()]
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = generate_uid()
    seg = Dataset()
    seg.SegmentNumber = 1
    seg.SegmentLabel = seg_label
    seg.SegmentAlgorithmType = "MANUAL"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "91723000", "SCT", "Anatomical Structure"
    seg.SegmentedPropertyCategoryCodeSequence = [code]
    t = Dataset()
    t.CodeValue, t.CodingSchemeDesignator, t.CodeMeaning = "51282000", "SCT", "Spine"
    seg.SegmentedPropertyTypeCodeSequence = [t]
    ds.SegmentSequence = [seg]
    shared = Dataset()
    pm, po = Dataset(), Dataset()
    pm.PixelSpacing = list(ref.PixelSpacing)
    pm.SliceThickness = ref.get("SliceThickness", 1)
    po.ImageOrientationPatient = list(ref.ImageOrientationPatient)
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [pm], [po]
    ds.SharedFunctionalGroupsSequence = [shared]
    per = []
    for ipp in positions:
        f = Dataset()
        pp, si, fc = Dataset(), Dataset(), Dataset()
        pp.ImagePositionPatient = ["%.6f" % v for v in ipp]
        si.ReferencedSegmentNumber = 1
        fc.DimensionIndexValues = [1, len(per) + 1]
        f.PlanePositionSequence, f.SegmentIdentificationSequence, f.FrameContentSequence = [pp], [si], [fc]
        per.append(f)
    ds.PerFrameFunctionalGroupsSequence = per
    bits = np.packbits(np.concatenate([m.ravel() for m in frames]).astype(np.uint8), bitorder="little").tobytes()
    ds.PixelData = bits + (b"\0" if len(bits) % 2 else b"")
    ds.save_as(out, write_like_original=False)
    print(sum(int(m.sum()) for m in frames))


if __name__ == "__main__":
    main()
