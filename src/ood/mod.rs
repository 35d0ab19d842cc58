//! Out-of-distribution detection from likelihoods and real code lengths (issue 21).
//!
//! Likelihood models can rate some foreign data as *more* likely than their own test data
//! (Nalisnick et al., ICLR 2019). Here each image of an in-distribution set and of one or more
//! OOD sets gets, from real computations:
//!
//! - the model's NLL in bits ([`model::LikelihoodModel`]: an IDF's exact NLL, a VAE's bound, a
//!   training run's importance-weighted bound or, for a flow run, the per-image bound of its test
//!   figure) and, where the family codes, the size of the file the codec writes with it;
//! - its generic complexity ([`complexity`]): PNG, the context coder, the best installed
//!   classical codec, all real files;
//! - optionally the NLL under a background model (`--background`, any model `--model` takes).
//!
//! From these come the scores ([`Score`]: higher = more out of distribution): the raw NLL, the
//! real code length, the complexity-corrected NLL (model bits − generic bits, one per generic
//! coder) and the likelihood ratio against the background; and per OOD set and score, AUROC,
//! AUPR and FPR at 95 % TPR ([`roc`]). [`plot`] draws the bpd histograms, [`report`] the tables
//! and the per-image CSV.

pub mod complexity;
pub mod model;
pub mod plot;
pub mod report;
pub mod roc;
#[cfg(feature = "train")]
pub mod run;
pub mod sets;

use anyhow::{Context, Result};

use complexity::{Complexity, Generic};
use model::LikelihoodModel;
use roc::Separation;
use sets::LoadedSet;

/// One image's measurements (bits and bytes are whole-image figures).
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Its index in its set.
    pub index: usize,
    /// Sub-pixels (channels × height × width).
    pub dims: u64,
    /// The model's NLL (or bound) in bits.
    pub nll_bits: f64,
    /// The codec's file with the model, in bytes (`None`: the family does not code here).
    pub coded_bytes: Option<u64>,
    pub complexity: Complexity,
    /// The background model's NLL in bits, when one was given.
    pub background_bits: Option<f64>,
}

/// A set with its measurements.
#[derive(Debug)]
pub struct MeasuredSet {
    pub name: String,
    /// What was done to fit the set to the in-distribution geometry, if anything.
    pub fitted: Option<String>,
    pub rows: Vec<Measured>,
}

/// A per-image score; higher means more out of distribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Score {
    /// The model's NLL, bits per sub-pixel.
    Nll,
    /// The model's real code length through the codec, bits per sub-pixel.
    Coded,
    /// NLL − PNG's code length (bpd).
    MinusPng,
    /// NLL − the context coder's code length (bpd).
    MinusContext,
    /// NLL − the best installed classical codec's code length (bpd).
    MinusClassical,
    /// NLL − the background model's NLL (bpd): minus the log likelihood ratio.
    Ratio,
}

impl Score {
    /// The scores a run has: every one its measurements allow.
    pub fn available(model_codes: bool, classical: bool, background: bool) -> Vec<Score> {
        let mut scores = vec![Score::Nll];
        if model_codes {
            scores.push(Score::Coded);
        }
        scores.extend([Score::MinusPng, Score::MinusContext]);
        if classical {
            scores.push(Score::MinusClassical);
        }
        if background {
            scores.push(Score::Ratio);
        }
        scores
    }

    /// The name in tables and the CSV.
    pub fn name(&self) -> &'static str {
        match self {
            Score::Nll => "nll",
            Score::Coded => "coded",
            Score::MinusPng => "nll-png",
            Score::MinusContext => "nll-context",
            Score::MinusClassical => "nll-classical",
            Score::Ratio => "nll-background",
        }
    }

    /// The score of `m` in bits per sub-pixel (`None` where it was not measured).
    pub fn of(&self, m: &Measured) -> Option<f64> {
        let bpd = |bits: f64| bits / m.dims as f64;
        let bytes = |b: u64| bpd(b as f64 * 8.0);
        let nll = bpd(m.nll_bits);
        match self {
            Score::Nll => Some(nll),
            Score::Coded => m.coded_bytes.map(bytes),
            Score::MinusPng => Some(nll - bytes(m.complexity.png)),
            Score::MinusContext => Some(nll - bytes(m.complexity.context)),
            Score::MinusClassical => m
                .complexity
                .classical
                .as_ref()
                .map(|(b, _)| nll - bytes(*b)),
            Score::Ratio => m.background_bits.map(|b| nll - bpd(b)),
        }
    }

    /// The scores of a set's images; an error naming the set and the score when one is missing.
    pub fn of_set(&self, set: &MeasuredSet) -> Result<Vec<f64>> {
        set.rows
            .iter()
            .map(|m| {
                self.of(m).with_context(|| {
                    format!(
                        "{}: image {} has no {} score",
                        set.name,
                        m.index,
                        self.name()
                    )
                })
            })
            .collect()
    }
}

/// Measures every image of `set`: the model's NLL, its coded size (where it codes), the generic
/// code lengths and the background's NLL. `progress(done)` after each image.
pub fn measure(
    model: &dyn LikelihoodModel,
    background: Option<&dyn LikelihoodModel>,
    generic: &mut Generic,
    set: &LoadedSet,
    progress: &mut dyn FnMut(usize),
) -> Result<MeasuredSet> {
    let images = &set.images;
    model
        .check_geometry(images.channels, images.height, images.width)
        .with_context(|| format!("{}: the model does not take these images", set.name))?;
    if let Some(b) = background {
        b.check_geometry(images.channels, images.height, images.width)
            .with_context(|| {
                format!(
                    "{}: the background model does not take these images",
                    set.name
                )
            })?;
    }
    let nll = model.nll_bits(images).with_context(|| set.name.clone())?;
    let background_nll = match background {
        Some(b) => Some(b.nll_bits(images).with_context(|| set.name.clone())?),
        None => None,
    };
    let mut rows = Vec::with_capacity(images.count);
    for (i, &nll_bits) in nll.iter().enumerate() {
        let pixels = sets::picture(images, i);
        let image = crate::picture::codec_image(pixels.clone())
            .map_err(|color| anyhow::anyhow!("{}: {color} images", set.name))?;
        let name = format!("{} image {i}", set.name);
        let coded_bytes = match model.codes() {
            true => Some(model.coded_bytes(&image).with_context(|| name.clone())?),
            false => None,
        };
        rows.push(Measured {
            index: i,
            dims: image.dimensions(),
            nll_bits,
            coded_bytes,
            complexity: generic.measure(&name, &pixels, &image)?,
            background_bits: background_nll.as_ref().map(|b| b[i]),
        });
        progress(i + 1);
    }
    Ok(MeasuredSet {
        name: set.name.clone(),
        fitted: set.fitted.clone(),
        rows,
    })
}

/// The separation of each OOD set from the in-distribution set, per score.
pub fn compare(
    in_dist: &MeasuredSet,
    ood: &MeasuredSet,
    scores: &[Score],
) -> Result<Vec<(Score, Separation)>> {
    scores
        .iter()
        .map(|score| {
            let s = roc::separation(&score.of_set(in_dist)?, &score.of_set(ood)?).with_context(
                || {
                    format!(
                        "{} against {}, score {}",
                        ood.name,
                        in_dist.name,
                        score.name()
                    )
                },
            )?;
            Ok((score.clone(), s))
        })
        .collect()
}
