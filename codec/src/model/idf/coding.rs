//! The IDF's latents on an ANS stream: an image (or tile) pushed as the flow's latents with
//! their mixture priors' tables, and popped back in decoding order.
//!
//! # Payload
//! Decoding order is: top latent (CHW order), then the factor-out of the last level down to
//! level 0, each in CHW order, group by group as [`crate::model::idf::arch`] defines them (a phased level's
//! groups are its pixel phases' channel groups, at half the level's size); between levels the
//! decoder runs the inverse flow for one level,
//! which gives it the `rest` that the next prior needs. ANS is a stack, so the encoder pushes the
//! exact reverse of that sequence.
//!
//!
//! # Size
//! A payload costs `Σ −log2(q/2^PRECISION)` (within 0.1% of the model's NLL when few values
//! escape) plus a constant: with [`StreamStart::One`] about 20 bits of ANS start-up and byte
//! rounding, with [`StreamStart::Checksum`] the checksum's 32 bits and byte rounding. The
//! constant is paid per [`encode_image`] call, so code large images or tiles.

use constriction::stream::stack::DefaultAnsCoder;

use super::Idf;
use crate::engine::{IntTensor, Shape};
use crate::entropy::{
    check_not_dry, close_stream, finish_stream, open_stream, start_stream, LatentModel,
    LogisticMixture, StreamStart,
};
use crate::model::idf::flow::{self, GroupParams};
use crate::{CodecError, Result};

/// The quantised models of a group's latents, visited one after another. A latent whose
/// parameters equal those of the latent visited just before shares its table (every latent of a
/// channel of the first top group; flat image regions). A table depends only on its parameters,
/// so this changes no output, only the time spent building tables.
struct LatentModels<'a> {
    params: &'a GroupParams,
    last: Option<(usize, LatentModel)>,
}

impl<'a> LatentModels<'a> {
    fn new(params: &'a GroupParams) -> Self {
        LatentModels { params, last: None }
    }

    /// The model of latent `i`.
    fn get(&mut self, i: usize) -> Result<&LatentModel> {
        let params = self.params;
        let same = matches!(&self.last, Some((j, _)) if params.get(*j) == params.get(i));
        if !same {
            let model = LatentModel::new(&LogisticMixture::new(&params.get(i))?)?;
            self.last = Some((i, model));
        }
        Ok(&self.last.as_ref().expect("set above").1)
    }
}

/// Checked image shape for the coder's public entry points.
fn image_shape(model: &Idf, channels: usize, height: usize, width: usize) -> Result<Shape> {
    let shape = Shape::new(channels, height, width);
    flow::check_image_shape(model.config(), shape)?;
    Ok(shape)
}

/// Pushes an image (`channels×height×width` pixels, CHW order) coded by `model` onto `coder`.
pub fn push_image(
    coder: &mut DefaultAnsCoder,
    model: &Idf,
    pixels: &[u8],
    channels: usize,
    height: usize,
    width: usize,
) -> Result<()> {
    let shape = image_shape(model, channels, height, width)?;
    let image = IntTensor::from_vec(shape, pixels.iter().map(|&p| i32::from(p)).collect())?;
    let latents = flow::forward(model, &image)?;
    // Emission order with each group reversed is exactly the reverse of the decoding order.
    for group in &latents.groups {
        let mut models = LatentModels::new(&group.params);
        for (i, &z) in group.values.data().iter().enumerate().rev() {
            models.get(i)?.encode(coder, z)?;
        }
    }
    Ok(())
}

/// Pops an image pushed by [`push_image`] with the same model and `(channels, height, width)`.
///
/// Damaged or foreign data give [`CodecError::CorruptPayload`] (or
/// [`CodecError::NonFiniteParameters`] when garbage latents drive the networks out of range):
/// an escaped value inside its window, data exhausted (at once when the stream runs dry below
/// `floor`, see [`check_not_dry`]), or pixels outside `0..=255`.
pub fn pop_image(
    coder: &mut DefaultAnsCoder,
    model: &Idf,
    (channels, height, width): (usize, usize, usize),
    floor: u64,
) -> Result<Vec<u8>> {
    let shape = image_shape(model, channels, height, width)?;
    let z = flow::decode(model, shape, |part, params| {
        decode_group(coder, part, params, floor)
    })?;
    z.data()
        .iter()
        .map(|&v| {
            u8::try_from(v)
                .map_err(|_| CodecError::CorruptPayload("decoded pixel outside 0..=255".into()))
        })
        .collect()
}

/// Codes an image (`channels×height×width` pixels, CHW order) into payload bytes, starting the
/// ANS stream at `start`.
pub fn encode_image(
    model: &Idf,
    pixels: &[u8],
    channels: usize,
    height: usize,
    width: usize,
    start: StreamStart,
) -> Result<Vec<u8>> {
    let mut coder = start_stream(start);
    push_image(&mut coder, model, pixels, channels, height, width)?;
    finish_stream(coder)
}

/// Decodes payload bytes made by [`encode_image`] with the same model and dimensions.
/// `start` gives, from the decoded pixels, the [`StreamStart`] the stream must end at
/// (`|_| StreamStart::One` for version 1).
///
/// Errors as for [`open_stream`], [`pop_image`] and [`close_stream`]: an empty payload or one
/// ending in a zero byte, damaged data, data left over, or (versions 2, 3) a stream that ends at
/// another checksum than the decoded pixels have.
pub fn decode_image(
    model: &Idf,
    payload: &[u8],
    channels: usize,
    height: usize,
    width: usize,
    start: impl FnOnce(&[u8]) -> StreamStart,
) -> Result<Vec<u8>> {
    image_shape(model, channels, height, width)?;
    let mut coder = open_stream(payload)?;
    let shape = (channels, height, width);
    let pixels = pop_image(&mut coder, model, shape, StreamStart::One.floor())?;
    close_stream(coder, start(&pixels))?;
    Ok(pixels)
}

/// Pops one group's latents in CHW order, stopping as soon as the stream runs dry below
/// `floor`.
fn decode_group(
    coder: &mut DefaultAnsCoder,
    shape: Shape,
    params: &GroupParams,
    floor: u64,
) -> Result<IntTensor> {
    let mut models = LatentModels::new(params);
    let values = (0..shape.len())
        .map(|i| {
            let z = models.get(i)?.decode(coder)?;
            check_not_dry(coder, floor)?;
            Ok(z)
        })
        .collect::<Result<Vec<_>>>()?;
    IntTensor::from_vec(shape, values)
}
