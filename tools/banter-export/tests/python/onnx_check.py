# Checks exported graphs with the `onnx` package (the spec's checker, full shape inference) and prints each
# model's inputs and outputs. argv[1:]: model.onnx paths. Prints one JSON line.
import json
import sys

import onnx

out = []
for p in sys.argv[1:]:
    m = onnx.load(p)
    onnx.checker.check_model(m, full_check=True)
    out.append({
        "path": p,
        "inputs": [i.name for i in m.graph.input],
        "outputs": [o.name for o in m.graph.output],
        "opset": m.opset_import[0].version,
    })
print(json.dumps(out))
