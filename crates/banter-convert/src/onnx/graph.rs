//! A small builder of ONNX graphs (opset 17): nodes with unique output names, initializers from tch
//! tensors, and the pieces every decoder uses (linear layers fp32 or int8, norms, activations, rotary
//! embeddings, the attention core over a KV cache).

use tch::Tensor;

use super::proto::{AttributeProto, NodeProto, TensorProto, dtype};

/// The graph being built.
#[derive(Debug, Default)]
pub struct Graph {
    /// Nodes in topological order.
    pub nodes: Vec<NodeProto>,
    /// Weights and constants.
    pub inits: Vec<TensorProto>,
    count: usize,
    /// Linear weights as int8 (per output channel) with dynamically quantized activations.
    pub int8: bool,
}

/// An attribute.
pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i, r#type: 2, ..Default::default() }
}

/// A float attribute.
pub fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), f, r#type: 1, ..Default::default() }
}

/// An ints attribute.
pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: ints.to_vec(), r#type: 7, ..Default::default() }
}

/// A weight by its Hugging Face name.
pub fn get<'a>(w: &'a std::collections::BTreeMap<String, Tensor>, k: &str) -> Result<&'a Tensor, crate::ConvertError> {
    w.get(k).ok_or_else(|| crate::ConvertError::Format(format!("no tensor {k}")))
}

/// A tensor's values as f32 (row-major).
pub fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).contiguous().reshape([-1])).unwrap_or_default()
}

impl Graph {
    /// An empty graph; `int8` for int8 linear weights.
    pub fn new(int8: bool) -> Self {
        Graph { int8, ..Default::default() }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// A node with one output (named after `op` unless `out` is given).
    pub fn op_to(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, out: Option<&str>) -> String {
        let name = out.map(str::to_string).unwrap_or_else(|| self.fresh(op));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: format!("node_{}", name),
            op_type: op.into(),
            attribute: attrs,
            domain: String::new(),
        });
        name
    }

    /// A node with one output.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_to(op, inputs, attrs, None)
    }

    /// A node with `n` outputs.
    pub fn op_n(&mut self, op: &str, inputs: &[&str], n: usize, attrs: Vec<AttributeProto>) -> Vec<String> {
        let outs: Vec<String> = (0..n).map(|_| self.fresh(op)).collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.clone(),
            name: format!("node_{}", outs[0]),
            op_type: op.into(),
            attribute: attrs,
            domain: String::new(),
        });
        outs
    }

    /// A float initializer.
    pub fn init_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits.push(TensorProto {
            dims: dims.to_vec(),
            data_type: dtype::FLOAT,
            name: name.into(),
            raw_data: raw,
            ..Default::default()
        });
        name.into()
    }

    /// An initializer from a tensor (fp32).
    pub fn weight(&mut self, name: &str, t: &Tensor) -> String {
        let dims = t.size();
        self.init_f32(name, &dims, &values(t))
    }

    /// An int64 constant (1-D, or a scalar when `scalar`).
    pub fn ints(&mut self, v: &[i64], scalar: bool) -> String {
        let name = self.fresh("const_i64");
        let dims = if scalar { vec![] } else { vec![v.len() as i64] };
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.inits.push(TensorProto {
            dims,
            data_type: dtype::INT64,
            name: name.clone(),
            raw_data: raw,
            ..Default::default()
        });
        name
    }

    /// A float scalar constant.
    pub fn scalar(&mut self, v: f32) -> String {
        let name = self.fresh("const_f32");
        self.init_f32(&name, &[], &[v])
    }

    /// `x · W + b` for a weight given as `[in, out]` (`name` names the initializers). int8: the weight
    /// per output channel (`q = round(W / s)`, `s = max|W[:, j]| / 127`), the activations by
    /// `DynamicQuantizeLinear`, the product by `MatMulInteger`, rescaled by `x_scale · s`.
    pub fn linear(&mut self, x: &str, w_in_out: &Tensor, b: Option<&Tensor>, name: &str) -> String {
        let y = if self.int8 {
            let w = w_in_out.to_kind(tch::Kind::Float).contiguous();
            let scale = (w.abs().amax([0i64].as_slice(), false) / 127.0).clamp_min(1e-12);
            let q = (&w / scale.unsqueeze(0)).round().clamp(-127.0, 127.0);
            let qv: Vec<u8> = values(&q).iter().map(|v| *v as i8 as u8).collect();
            let qn = format!("{name}.weight_int8");
            self.inits.push(TensorProto {
                dims: w.size(),
                data_type: dtype::INT8,
                name: qn.clone(),
                raw_data: qv,
                ..Default::default()
            });
            let sn = self.init_f32(&format!("{name}.weight_scale"), &[w.size()[1]], &values(&scale));
            let xq = self.op_n("DynamicQuantizeLinear", &[x], 3, vec![]);
            let yi = self.op("MatMulInteger", &[&xq[0], &qn, &xq[2]], vec![]);
            let yf = self.op("Cast", &[&yi], vec![attr_i("to", dtype::FLOAT as i64)]);
            let s = self.op("Mul", &[&xq[1], &sn], vec![]);
            self.op("Mul", &[&yf, &s], vec![])
        } else {
            let wn = self.weight(&format!("{name}.weight"), w_in_out);
            self.op("MatMul", &[x, &wn], vec![])
        };
        match b {
            Some(b) => {
                let bn = self.weight(&format!("{name}.bias"), b);
                self.op("Add", &[&y, &bn], vec![])
            }
            None => y,
        }
    }

    /// A Hugging Face `nn.Linear` (`[out, in]` weight).
    pub fn hf_linear(&mut self, x: &str, w_out_in: &Tensor, b: Option<&Tensor>, name: &str) -> String {
        self.linear(x, &w_out_in.tr().contiguous(), b, name)
    }

    /// RMSNorm: `x / sqrt(mean(x²) + eps) · w`.
    pub fn rms_norm(&mut self, x: &str, w: &str, eps: f64) -> String {
        let sq = self.op("Mul", &[x, x], vec![]);
        let var = self.op("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_i("keepdims", 1)]);
        let e = self.scalar(eps as f32);
        let var = self.op("Add", &[&var, &e], vec![]);
        let sd = self.op("Sqrt", &[&var], vec![]);
        let n = self.op("Div", &[x, &sd], vec![]);
        self.op("Mul", &[&n, w], vec![])
    }

    /// LayerNorm over the last axis.
    pub fn layer_norm(&mut self, x: &str, w: &str, b: &str, eps: f64) -> String {
        self.op("LayerNormalization", &[x, w, b], vec![attr_i("axis", -1), attr_f("epsilon", eps as f32)])
    }

    /// GELU, tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    pub fn gelu_tanh(&mut self, x: &str) -> String {
        let x3 = self.op("Mul", &[x, x], vec![]);
        let x3 = self.op("Mul", &[&x3, x], vec![]);
        let c = self.scalar(0.044715);
        let t = self.op("Mul", &[&x3, &c], vec![]);
        let t = self.op("Add", &[x, &t], vec![]);
        let k = self.scalar((2.0f64 / std::f64::consts::PI).sqrt() as f32);
        let t = self.op("Mul", &[&t, &k], vec![]);
        let t = self.op("Tanh", &[&t], vec![]);
        let one = self.scalar(1.0);
        let t = self.op("Add", &[&t, &one], vec![]);
        let half = self.scalar(0.5);
        let h = self.op("Mul", &[x, &half], vec![]);
        self.op("Mul", &[&h, &t], vec![])
    }

    /// Exact GELU (`gelu`): `x/2 · (1 + erf(x/√2))`.
    pub fn gelu_erf(&mut self, x: &str) -> String {
        let r = self.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let t = self.op("Mul", &[x, &r], vec![]);
        let t = self.op("Erf", &[&t], vec![]);
        let one = self.scalar(1.0);
        let t = self.op("Add", &[&t, &one], vec![]);
        let half = self.scalar(0.5);
        let h = self.op("Mul", &[x, &half], vec![]);
        self.op("Mul", &[&h, &t], vec![])
    }

    /// SiLU: `x · σ(x)`.
    pub fn silu(&mut self, x: &str) -> String {
        let s = self.op("Sigmoid", &[x], vec![]);
        self.op("Mul", &[x, &s], vec![])
    }

    /// `tanh(x / cap) · cap`.
    pub fn softcap(&mut self, x: &str, cap: f64) -> String {
        self.softcap_to(x, cap, None)
    }

    /// [`Graph::softcap`] into the value named `out` (a graph output).
    pub fn softcap_to(&mut self, x: &str, cap: f64, out: Option<&str>) -> String {
        let c = self.scalar(cap as f32);
        let t = self.op("Div", &[x, &c], vec![]);
        let t = self.op("Tanh", &[&t], vec![]);
        self.op_to("Mul", &[&t, &c], vec![], out)
    }

    /// `Reshape` to fixed dims (0 keeps an input dim, -1 infers one).
    pub fn reshape(&mut self, x: &str, dims: &[i64]) -> String {
        let s = self.ints(dims, false);
        self.op("Reshape", &[x, &s], vec![])
    }

    /// `Transpose`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.op("Transpose", &[x], vec![attr_ints("perm", perm)])
    }

    /// `Unsqueeze` at `axes`.
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let a = self.ints(axes, false);
        self.op("Unsqueeze", &[x, &a], vec![])
    }

    /// Rotary embedding of `x` `[B, T, heads, hd]` with `cos`/`sin` `[B, T, 1, hd]`: `x·cos + rotate_half(x)·sin`.
    pub fn rope(&mut self, x: &str, cos: &str, sin: &str, hd: i64) -> String {
        let split = self.ints(&[hd / 2, hd / 2], false);
        let halves = self.op_n("Split", &[x, &split], 2, vec![attr_i("axis", -1)]);
        let neg = self.op("Neg", &[&halves[1]], vec![]);
        let rot = self.op("Concat", &[&neg, &halves[0]], vec![attr_i("axis", -1)]);
        let a = self.op("Mul", &[x, cos], vec![]);
        let b = self.op("Mul", &[&rot, sin], vec![]);
        self.op("Add", &[&a, &b], vec![])
    }
}
