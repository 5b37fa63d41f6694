"""Write the bundled example ONNX model: ``python scenarios/examples/make_onnx_example.py``.

``encoder-small.onnx`` is a BERT-style encoder (2 layers, hidden 64, 4 heads,
sequence 32, vocabulary 256, int64 token ids, random weights, seed 0) written
the way PyTorch's legacy exporter writes models (module-path node names,
``Shape -> Gather -> Unsqueeze -> Concat`` reshape targets, a weight read
through ``Identity``): see :mod:`pipesim.workloads.onnx_models`.  The README's
"Real runs" section profiles and executes it.
"""

from pathlib import Path

import onnx

from pipesim.workloads.onnx_models import encoder_onnx

OUT = Path(__file__).with_name("encoder-small.onnx")

if __name__ == "__main__":
    onnx.save(encoder_onnx(layers=2, hidden=64, heads=4, seq=32, vocab=256, seed=0), str(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")
