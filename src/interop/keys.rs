//! The documented key mapping between this crate's generator and the PyTorch port.
//!
//! Rules, applied to the dot-separated segments of a Burn parameter path:
//!
//! | Burn segment(s)            | port segment(s)            |
//! |----------------------------|----------------------------|
//! | `conv`                     | `1` (after the pad at `0`)  |
//! | `norm` in a CNL            | `2`                        |
//! | `norm` right after `layers`| `3` (the IRB's final norm) |
//! | `gamma` / `beta`           | `weight` / `bias`          |
//! | `block_c.head` / `.tail`   | `block_c.0` / `block_c.5`  |
//! | `irbs.i`                   | `(i+1).layers`             |
//! | `expand` / `depthwise` / `project` | `0` / `1` / `2`    |
//! | `out_layer`                | `out_layer.0`              |
//!
//! e.g. `block_c.irbs.0.depthwise.conv.bias` ↔ `block_c.1.layers.1.1.bias`.

/// Maps a Burn generator parameter path to the port's `state_dict` key.
pub fn burn_to_port(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut segments = path.split('.');
    while let Some(seg) = segments.next() {
        match seg {
            "head" => out.push("0".into()),
            "tail" => out.push("5".into()),
            "irbs" => {
                let index = segments
                    .next()
                    .and_then(|i| i.parse::<usize>().ok())
                    .unwrap_or(0);
                out.push((index + 1).to_string());
                out.push("layers".into());
            }
            "expand" => out.push("0".into()),
            "depthwise" => out.push("1".into()),
            "project" => out.push("2".into()),
            "conv" => out.push("1".into()),
            "norm" => {
                let after_layers = out.last().is_some_and(|s| s == "layers");
                out.push(if after_layers { "3" } else { "2" }.into());
            }
            "gamma" => out.push("weight".into()),
            "beta" => out.push("bias".into()),
            "out_layer" => {
                out.push("out_layer".into());
                out.push("0".into());
            }
            other => out.push(other.into()),
        }
    }
    out.join(".")
}
