"""``headpose-ros export-hopenet``: convert the authors' Hopenet checkpoint to ONNX for the hopenet backend.

The weights are not downloaded by this package: get ``hopenet_robust_alpha1.pkl``
(recommended for real images; or ``hopenet_alpha1.pkl`` / ``hopenet_alpha2.pkl``,
the paper's benchmark models) from github.com/natanielruiz/deep-head-pose, then::

    headpose-ros export-hopenet hopenet_robust_alpha1.pkl -o hopenet.onnx

The checkpoint is read with ``torch.load(weights_only=True)`` only (a pickle that
would run code is refused), its keys and shapes are checked against Hopenet
(ResNet-50, 66 bins per angle), and the ONNX export is run in ONNX Runtime against
torch before it is written (atomically). Needs torch and onnx
(``pip install '.[convert]'`` in the headpose_ros clone); the engine itself never imports torch.
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

from headpose_ros.cli import CommandError
from headpose_ros.core.files import sha256_file

INSTALL_HINT = "pip install '.[convert]' in the headpose_ros clone (or: pip install torch onnx)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", type=Path, metavar="WEIGHTS.pkl",
                        help="the authors' checkpoint, e.g. hopenet_robust_alpha1.pkl")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="ONNX",
                        help="where to write the model (default: WEIGHTS with the suffix .onnx); "
                             "then set the parameter hopenet.model_file to it")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest accepted |ONNX Runtime - torch| logit difference (default: 1e-4)")


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401 - only to report a missing torch before anything else
        import onnx  # noqa: F401

        from headpose_ros.assets.convert import hopenet
    except ImportError as exc:
        missing = exc.name or "torch"
        raise CommandError(f"export-hopenet needs {missing}, which is not installed: {INSTALL_HINT}") from None

    weights = args.weights.expanduser()
    output = (args.output.expanduser() if args.output else weights.with_suffix(".onnx")).absolute()
    if output.exists() and weights.exists() and output.resolve() == weights.resolve():
        raise CommandError(f"the output {output} is the checkpoint itself; choose another name with -o")
    if output.is_dir():
        raise CommandError(f"the output {output} is a directory; give a file name such as {output / 'hopenet.onnx'}")

    start = time.monotonic()
    try:
        loaded = hopenet.load_checkpoint(weights)
        model = hopenet.Hopenet()
        state = hopenet.check_state_dict(loaded, model, source=str(weights))
        model.load_state_dict(state, strict=True)
        model.eval()
        layout = "zip" if zipfile.is_zipfile(weights) else "legacy pre-1.6"
        params = sum(v.numel() for v in loaded.values() if v.is_floating_point())
        print(f"loaded {weights}: {len(loaded)} tensors, {params / 1e6:.1f} M parameters, {layout} torch format")

        probes, note = _face_probe()
        source_sha = sha256_file(weights)
        result = hopenet.export_onnx(
            model, output, probes=probes, opset=args.opset, tolerance=args.tolerance,
            metadata={"headpose_ros.source_file": weights.name, "headpose_ros.source_sha256": source_sha})
    except hopenet.HopenetError as exc:
        raise CommandError(str(exc)) from None
    except ImportError as exc:
        raise CommandError(f"export-hopenet needs {exc.name}, which is not installed: {INSTALL_HINT}") from None
    except MemoryError:
        raise CommandError("out of memory while exporting (ResNet-50 needs about 1 GB)") from None
    except Exception as exc:  # noqa: BLE001 - torch/onnx internals: still one line, never a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CommandError(f"export failed: {type(exc).__name__}: {first}") from None

    per_probe = ", ".join(f"{name} {diff:.1e}" for name, diff in result.per_probe.items())
    print(f"ONNX Runtime vs torch: max |logit difference| {result.max_abs_diff:.1e} ({per_probe}; "
          f"tolerance {args.tolerance:g}); batched vs single crops {result.batch_diff:.1e}")
    if note:
        print(note)
    print(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, opset {args.opset}, "
          f"sha256 {result.sha256[:16]}...) in {time.monotonic() - start:.1f} s")
    print("use it (backend hopenet): set the parameter hopenet.model_file to this file, e.g.\n"
          f"  ros2 run headpose_ros headpose_node --ros-args -p backend:=hopenet -p hopenet.network:=hopenet "
          f"-p hopenet.model_file:={result.path}\n"
          f"  headpose-ros predict --backend hopenet --network-file {result.path} --camera-info CAMERA.yaml IMAGE")
    return 0


def _face_probe():
    """({"astronaut_face": (1, 3, 224, 224) float32}, "") from the cached sample photo, else ({}, why not).

    A real face makes the parity check exercise the activations the network
    sees in use, not only noise. The photo is in the cache after `make setup` /
    `headpose-ros prepare`; without it the check runs on noise alone.
    """
    try:
        import cv2

        from headpose_ros import assets
        from headpose_ros.core.models import HOPENET

        bgr = cv2.imread(str(assets.photo_path("astronaut")), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError("unreadable photo")
    except Exception:  # noqa: BLE001 - the probe is a bonus; noise still checks the export
        return {}, "(parity checked on noise only: the sample photos are not cached; `headpose-ros prepare --photos`)"
    # Rows 10-200, columns 140-330 of the 512x512 photo: her face with a Hopenet-like loose margin.
    crop = cv2.cvtColor(bgr[10:200, 140:330], cv2.COLOR_BGR2RGB)
    crop = cv2.resize(crop, HOPENET.input.size, interpolation=cv2.INTER_AREA)
    return {"astronaut_face": HOPENET.input.to_tensor(crop)}, ""
