//! A dense (fully connected) layer in one fixed summation order, and the activations the dense
//! networks use.
//!
//! # Determinism
//! Output `o` is `bias[o] + Σ_i weight[o][i]·x[i]`, accumulated in `f32` as: `acc = 0`, then
//! `acc = acc + weight[o][i]·x[i]` for `i` ascending (separate multiply and add: Rust never
//! contracts them into a fused multiply-add), then `acc + bias[o]`. Every machine, thread count
//! and build profile gives the same bits.

use crate::{CodecError, Result};

/// `out = W·x + b` with `W` of `outputs × inputs` (row-major, as PyTorch's `Linear.weight`).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// From `weight` (`outputs × inputs`, row-major) and `bias` (`outputs`).
    pub fn new(inputs: usize, outputs: usize, weight: Vec<f32>, bias: Vec<f32>) -> Result<Self> {
        if inputs.checked_mul(outputs) != Some(weight.len()) || bias.len() != outputs {
            return Err(CodecError::InvalidModel(format!(
                "a {inputs}→{outputs} dense layer needs {}×{} weights and {outputs} biases, got {} and {}",
                outputs,
                inputs,
                weight.len(),
                bias.len()
            )));
        }
        Ok(Dense {
            inputs,
            outputs,
            weight,
            bias,
        })
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The weights (`outputs × inputs`, row-major) and the biases.
    pub fn tensors(&self) -> [&[f32]; 2] {
        [&self.weight, &self.bias]
    }

    /// `W·x + b` in the fixed order of the module docs.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.inputs {
            return Err(CodecError::Internal(format!(
                "dense layer of {} inputs given {}",
                self.inputs,
                x.len()
            )));
        }
        Ok(self
            .weight
            .chunks_exact(self.inputs)
            .zip(&self.bias)
            .map(|(row, &b)| {
                let mut acc = 0.0f32;
                for (&w, &v) in row.iter().zip(x) {
                    acc += w * v;
                }
                acc + b
            })
            .collect())
    }
}

/// ReLU in place (`max(v, 0)`; `-0.0` and NaN map to `0.0`).
pub fn relu_in_place(x: &mut [f32]) {
    for v in x {
        *v = if *v > 0.0 { *v } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_scalar_reference() {
        let (inputs, outputs) = (7, 5);
        let weight: Vec<f32> = (0..inputs * outputs)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let bias: Vec<f32> = (0..outputs).map(|o| o as f32 * 0.25 - 0.5).collect();
        let x: Vec<f32> = (0..inputs).map(|i| (i as f32 - 3.0) / 3.0).collect();
        let layer = Dense::new(inputs, outputs, weight.clone(), bias.clone()).unwrap();
        let y = layer.forward(&x).unwrap();
        for o in 0..outputs {
            // the same order, written out: bit-identical
            let mut acc = 0.0f32;
            for i in 0..inputs {
                let p = weight[o * inputs + i] * x[i];
                acc += p;
            }
            assert_eq!(y[o].to_bits(), (acc + bias[o]).to_bits());
            // and close to the exact value
            let exact: f64 = (0..inputs)
                .map(|i| f64::from(weight[o * inputs + i]) * f64::from(x[i]))
                .sum::<f64>()
                + f64::from(bias[o]);
            assert!((f64::from(y[o]) - exact).abs() < 1e-5);
        }
        assert!(layer.forward(&x[1..]).is_err());
        assert!(Dense::new(inputs, outputs, weight, vec![0.0]).is_err());
    }

    #[test]
    fn relu_clears_negatives_and_nan() {
        let mut x = [-1.0, 0.5, f32::NAN, -0.0];
        relu_in_place(&mut x);
        assert_eq!(
            x.map(f32::to_bits),
            [0.0f32, 0.5, 0.0, 0.0].map(f32::to_bits)
        );
    }
}
