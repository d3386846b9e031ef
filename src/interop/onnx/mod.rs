//! The generator as a standard ONNX graph (opset 13, IR version 7), for other
//! tools: onnxruntime on desktops and phones, ncnn / MNN converters, the web.
//!
//! Input `photo` `[1, 3, height, width]` in [-1, 1], output `anime` the same
//! shape in [-1, 1]; height and width are dynamic (any size the network takes,
//! multiples of 4 for [`UpsampleMode::HalfPixelX2`]). Every layer maps to plain
//! operators: reflect `Pad`, `Conv` (grouped for the depthwise ones), GroupNorm(1,
//! C) spelled out as `ReduceMean` / `Sub` / `Mul` / `Sqrt` / `Div` (opset 13 has
//! no GroupNormalization), `LeakyRelu`, `Add`, `Resize` (bilinear; to the encoder
//! map's size with `align_corners`, or x2 with `half_pixel`) and `Tanh`.
//! Messages are written with `prost` ([`proto`]); `tests/onnx.rs` runs the file in
//! onnxruntime against photo2anime's own output.

mod proto;

use std::path::Path;

use prost::Message;

use crate::model::Generator;
use crate::model::blocks::{ConvNormLReLU, InvertedResBlock, LEAKY_SLOPE, LayerNorm2d, Padding};
use crate::model::upsample::UpsampleMode;
use crate::model_io::ModelError;
use proto::{
    AttributeProto, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto, attribute_type, data_type,
};

/// The operator set the graph is written for.
pub const OPSET: i64 = 13;

/// Builds the graph node by node, naming values `v0`, `v1`, ...
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    next: usize,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: attribute_type::STRING,
        ..Default::default()
    }
}

impl GraphBuilder {
    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("v{}", self.next)
    }

    /// Adds `op_type(inputs) -> new value` and returns the value's name.
    fn op(&mut self, op_type: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = self.fresh();
        self.op_to(op_type, inputs, attribute, out)
    }

    /// Adds `op_type(inputs) -> out`.
    fn op_to(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        out: String,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{op_type}_{}", self.nodes.len()),
            op_type: op_type.into(),
            attribute,
        });
        out
    }

    /// A float constant of shape `dims`.
    fn floats(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.to_string()
    }

    /// An int64 constant (1-D).
    fn int64s(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: data_type::INT64,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.to_string()
    }

    fn pad(&mut self, x: &str, p: Padding, name: &str) -> String {
        if p.left + p.right + p.top + p.bottom == 0 {
            return x.to_string();
        }
        // [x1_begin, x2_begin, x3_begin, x4_begin, x1_end, ...] over N, C, H, W.
        let pads = [0, 0, p.top, p.left, 0, 0, p.bottom, p.right].map(|v| v as i64);
        let pads = self.int64s(&format!("{name}.pads"), &pads);
        let mode = if p.reflect { "reflect" } else { "constant" };
        self.op("Pad", &[x, &pads], vec![attr_string("mode", mode)])
    }

    fn conv(
        &mut self,
        x: &str,
        conv: &burn::nn::conv::Conv2d,
        name: &str,
    ) -> Result<String, ModelError> {
        let weight = conv.weight.val();
        let dims = weight.dims();
        let w = self.floats(
            &format!("{name}.weight"),
            &dims,
            &tensor_values(weight, name)?,
        );
        let [cout, _, kh, kw] = dims;
        let mut inputs = vec![x.to_string(), w];
        if let Some(b) = &conv.bias {
            inputs.push(self.floats(
                &format!("{name}.bias"),
                &[cout],
                &tensor_values(b.val(), name)?,
            ));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op(
            "Conv",
            &refs,
            vec![
                attr_ints("kernel_shape", &[kh as i64, kw as i64]),
                attr_ints("strides", &conv.stride.map(|s| s as i64)),
                attr_int("group", conv.groups as i64),
            ],
        ))
    }

    /// GroupNorm(1, C) with `gamma`, `beta`, then LeakyReLU when `slope` is given.
    fn norm(
        &mut self,
        x: &str,
        n: &LayerNorm2d,
        slope: Option<f64>,
        name: &str,
    ) -> Result<String, ModelError> {
        let axes = || vec![attr_ints("axes", &[1, 2, 3]), attr_int("keepdims", 1)];
        let mean = self.op("ReduceMean", &[x], axes());
        let centred = self.op("Sub", &[x, &mean], vec![]);
        let squared = self.op("Mul", &[&centred, &centred], vec![]);
        let var = self.op("ReduceMean", &[&squared], axes());
        let eps = self.floats(&format!("{name}.eps"), &[], &[n.epsilon as f32]);
        let var_eps = self.op("Add", &[&var, &eps], vec![]);
        let std = self.op("Sqrt", &[&var_eps], vec![]);
        let normed = self.op("Div", &[&centred, &std], vec![]);
        let gamma = tensor_values(n.gamma.val(), name)?;
        let c = gamma.len();
        let gamma = self.floats(&format!("{name}.gamma"), &[1, c, 1, 1], &gamma);
        let beta = tensor_values(n.beta.val(), name)?;
        let beta = self.floats(&format!("{name}.beta"), &[1, c, 1, 1], &beta);
        let scaled = self.op("Mul", &[&normed, &gamma], vec![]);
        let y = self.op("Add", &[&scaled, &beta], vec![]);
        Ok(match slope {
            Some(k) => self.op("LeakyRelu", &[&y], vec![attr_float("alpha", k as f32)]),
            None => y,
        })
    }

    fn cnl(&mut self, x: &str, l: &ConvNormLReLU, name: &str) -> Result<String, ModelError> {
        let y = self.pad(x, l.pad, name);
        let y = self.conv(&y, &l.conv, &format!("{name}.conv"))?;
        self.norm(&y, &l.norm, Some(LEAKY_SLOPE), &format!("{name}.norm"))
    }

    fn irb(&mut self, x: &str, b: &InvertedResBlock, name: &str) -> Result<String, ModelError> {
        let y = self.cnl(x, &b.expand, &format!("{name}.expand"))?;
        let y = self.cnl(&y, &b.depthwise, &format!("{name}.depthwise"))?;
        let y = self.conv(&y, &b.project, &format!("{name}.project"))?;
        let y = self.norm(&y, &b.norm, None, &format!("{name}.norm"))?;
        Ok(if b.residual {
            self.op("Add", &[x, &y], vec![])
        } else {
            y
        })
    }

    /// Bilinear x2 upsampling of `x`: to `like`'s height and width with
    /// `align_corners`, or by exactly 2 with half-pixel centres.
    fn upsample(&mut self, x: &str, like: &str, mode: UpsampleMode, name: &str) -> String {
        let roi = self.floats(&format!("{name}.roi"), &[0], &[]);
        match mode {
            UpsampleMode::AlignCorners => {
                let x_shape = self.op("Shape", &[x], vec![]);
                let like_shape = self.op("Shape", &[like], vec![]);
                let (s0, s2, s4) = (
                    self.int64s(&format!("{name}.s0"), &[0]),
                    self.int64s(&format!("{name}.s2"), &[2]),
                    self.int64s(&format!("{name}.s4"), &[4]),
                );
                let batch_channels = self.op("Slice", &[&x_shape, &s0, &s2], vec![]);
                let spatial = self.op("Slice", &[&like_shape, &s2, &s4], vec![]);
                let sizes = self.op(
                    "Concat",
                    &[&batch_channels, &spatial],
                    vec![attr_int("axis", 0)],
                );
                self.op(
                    "Resize",
                    &[x, &roi, "", &sizes],
                    vec![
                        attr_string("mode", "linear"),
                        attr_string("coordinate_transformation_mode", "align_corners"),
                    ],
                )
            }
            UpsampleMode::HalfPixelX2 => {
                let scales = self.floats(&format!("{name}.scales"), &[4], &[1.0, 1.0, 2.0, 2.0]);
                self.op(
                    "Resize",
                    &[x, &roi, &scales],
                    vec![
                        attr_string("mode", "linear"),
                        attr_string("coordinate_transformation_mode", "half_pixel"),
                    ],
                )
            }
        }
    }
}

/// The values of `t` (any rank) as `f32`.
fn tensor_values<const D: usize>(
    t: burn::tensor::Tensor<D>,
    what: &str,
) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Export(format!("cannot read {what}: {e:?}")))
}

fn image_value(name: &str) -> ValueInfoProto {
    let dim = |v: DimensionValue| Dimension { value: Some(v) };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(DimensionValue::DimValue(1)),
                        dim(DimensionValue::DimValue(3)),
                        dim(DimensionValue::DimParam("height".into())),
                        dim(DimensionValue::DimParam("width".into())),
                    ],
                }),
            }),
        }),
    }
}

/// The ONNX file of `g`, as bytes. `description` (e.g. the source model) and the
/// app's version go into the model's metadata.
///
/// # Errors
/// [`ModelError::Export`] if a weight cannot be read.
pub fn generator_onnx(g: &Generator, description: &str) -> Result<Vec<u8>, ModelError> {
    let mut b = GraphBuilder {
        nodes: Vec::new(),
        initializers: Vec::new(),
        next: 0,
    };
    let mut y = "photo".to_string();
    for (i, l) in g.block_a.iter().enumerate() {
        y = b.cnl(&y, l, &format!("block_a.{i}"))?;
    }
    let half = y.clone(); // the encoder map at 1/2 (block_d's target)
    for (i, l) in g.block_b.iter().enumerate() {
        y = b.cnl(&y, l, &format!("block_b.{i}"))?;
    }
    y = b.cnl(&y, &g.block_c.head, "block_c.head")?;
    for (i, irb) in g.block_c.irbs.iter().enumerate() {
        y = b.irb(&y, irb, &format!("block_c.irbs.{i}"))?;
    }
    y = b.cnl(&y, &g.block_c.tail, "block_c.tail")?;
    y = b.upsample(&y, &half, g.upsample, "up1");
    for (i, l) in g.block_d.iter().enumerate() {
        y = b.cnl(&y, l, &format!("block_d.{i}"))?;
    }
    y = b.upsample(&y, "photo", g.upsample, "up2");
    for (i, l) in g.block_e.iter().enumerate() {
        y = b.cnl(&y, l, &format!("block_e.{i}"))?;
    }
    y = b.conv(&y, &g.out_layer, "out_layer")?;
    b.op_to("Tanh", &[&y], vec![], "anime".into());
    let version = crate::VERSION;
    let model = ModelProto {
        ir_version: 7,
        producer_name: "photo2anime".into(),
        producer_version: version.into(),
        doc_string: "AnimeGANv2 generator: photo [1, 3, H, W] in [-1, 1] -> anime image, same \
                     shape, in [-1, 1]"
            .into(),
        graph: Some(GraphProto {
            node: b.nodes,
            name: "animeganv2_generator".into(),
            initializer: b.initializers,
            input: vec![image_value("photo")],
            output: vec![image_value("anime")],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![
            StringStringEntryProto {
                key: "source".into(),
                value: description.into(),
            },
            StringStringEntryProto {
                key: "upsample".into(),
                value: serde_json::to_string(&g.upsample).unwrap_or_default(),
            },
        ],
    };
    Ok(model.encode_to_vec())
}

/// Writes `g` as an ONNX file at `out` (atomically).
///
/// # Errors
/// [`ModelError::Export`] if a weight cannot be read or the file written.
pub fn export_onnx(g: &Generator, description: &str, out: &Path) -> Result<(), ModelError> {
    let bytes = generator_onnx(g, description)?;
    crate::fsx::write_atomic(out, &bytes)
        .map_err(|e| ModelError::Export(format!("{}: cannot write: {e}", out.display())))
}
