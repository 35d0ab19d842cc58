//! `idfcodec verify`: compress and decompress images in memory, check that every pixel comes
//! back, and report the size (bits per dimension) and speed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use idfcodec_codec::bits_per_dimension;

use super::compress::{collect_inputs, read_input_image, CodingArgs, InputImage};
use crate::coding::{Coded, RoundTrip};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  idfcodec verify digit.png
  idfcodec verify fixtures/ --model my-model.safetensors --threads 1
  idfcodec verify photos/ --tile 64      # compare with --tile 128, 256, ...")]
pub struct VerifyArgs {
    /// Images (PNG in any pixel format, or JPEG) or folders searched recursively for them.
    #[arg(required = true, value_name = "IMAGE")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub coding: CodingArgs,
}

/// Sizes and times summed over the images that round-tripped.
#[derive(Default)]
struct Totals {
    images: usize,
    dimensions: u64,
    input_bytes: u64,
    coded_bytes: u64,
    encode: Duration,
    decode: Duration,
}

/// One image's round trip.
struct Trip {
    width: u32,
    height: u32,
    dimensions: u64,
    input_bytes: u64,
    coded: Coded,
}

pub fn run(a: VerifyArgs) -> Result<()> {
    let inputs = collect_inputs(&a.inputs)?;
    let trips = RoundTrip::new(a.coding.coding()?);
    let mut totals = Totals::default();
    let mut failed = 0;
    println!(
        "{:<32} {:>11} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "image", "size", "bytes", "bpd", "input bpd", "encode", "decode"
    );
    for input in &inputs {
        match round_trip(&trips, input) {
            Ok(trip) => {
                print_trip(input, &trip);
                totals.add(&trip);
            }
            Err(e) => {
                failed += 1;
                println!("{:<32} FAILED: {e:#}", input.name.as_str());
            }
        }
    }
    totals.print();
    if failed > 0 {
        bail!("{failed} of {} images failed to round-trip", inputs.len());
    }
    Ok(())
}

/// Reads one image file and round-trips it.
fn round_trip(trips: &RoundTrip, input: &InputImage) -> Result<Trip> {
    let (image, input_bytes) = read_input_image(input)?;
    Ok(Trip {
        width: image.width(),
        height: image.height(),
        dimensions: image.dimensions(),
        input_bytes,
        coded: trips.run(&image)?,
    })
}

fn print_trip(input: &InputImage, t: &Trip) {
    println!(
        "{:<32} {:>11} {:>9} {:>7.3} {:>9.3} {:>7.0}ms {:>7.0}ms",
        input.name.as_str(),
        format!("{}×{}", t.width, t.height),
        t.coded.bytes,
        bits_per_dimension(t.coded.bytes, t.dimensions),
        bits_per_dimension(t.input_bytes, t.dimensions),
        t.coded.encode.as_secs_f64() * 1e3,
        t.coded.decode.as_secs_f64() * 1e3
    );
}

impl Totals {
    fn add(&mut self, t: &Trip) {
        self.images += 1;
        self.dimensions += t.dimensions;
        self.input_bytes += t.input_bytes;
        self.coded_bytes += t.coded.bytes;
        self.encode += t.coded.encode;
        self.decode += t.coded.decode;
    }

    fn print(&self) {
        let per_second = |d: Duration| self.dimensions as f64 / d.as_secs_f64().max(1e-9) / 1e6;
        println!(
            "total: {} images round-tripped, {} bytes, {:.4} bpd (inputs {:.4} bpd); \
             encode {:.3} Mpx/s, decode {:.3} Mpx/s",
            self.images,
            self.coded_bytes,
            bits_per_dimension(self.coded_bytes, self.dimensions),
            bits_per_dimension(self.input_bytes, self.dimensions),
            per_second(self.encode),
            per_second(self.decode)
        );
    }
}
