//! Archives: many named images in one file ([`compress_archive`], [`decompress_archive`],
//! [`ArchiveDecoder`]), laid out as [`ArchiveLayout`] says.
//!
//! - **Independent** entries: each entry's tiles are their own ANS streams with their own
//!   checksums, coded and decoded in parallel, and decoded in batches within
//!   [`DecodeOptions::max_memory`].
//! - **Chained** entries (format version 4): every entry's tiles are pushed, entry after entry,
//!   onto **one** stream that starts from the archive's checksum ([`ChainCheck`]). A bits-back
//!   model (the VAE) then draws each entry's latents from the bits the entries before it pushed,
//!   so only the first entry pays for its draws (BB-ANS's chain), and no entry pays a start
//!   state of its own. The price: decoding runs on one thread, last entry first, and holds every
//!   entry until the stream has been checked (so the whole archive must fit the memory budget).

use rayon::prelude::*;

use crate::context::PlaneContent;
use crate::entropy::{self, StreamStart};
use crate::format::{
    Archive, ArchiveEntry, ChainCheck, CodedImage, EntryName, EntryPosition, TileCheck, Version,
};
use crate::image::{
    check_decodable, check_memory, checked_model, decode_coded, decode_memory, encode_coded,
    finish_image, image_header, layouts, on_threads, plane_content, reference, tile_memory, zeroed,
    TileCoding,
};
use crate::tile::{self, TileLayout};
use crate::{
    ArchiveLayout, DecodeOptions, EncodeOptions, Image, ImageCodecError, Model, ModelLookup,
    NamedImage,
};

/// Codes `images` into an archive (names must be distinct), with `model` or without, as
/// [`crate::compress`], laid out as [`EncodeOptions::archive_layout`] says.
pub fn compress_archive<'m>(
    images: &[NamedImage],
    model: impl Into<Option<&'m Model>>,
    options: &EncodeOptions,
) -> Result<Vec<u8>, ImageCodecError> {
    let model = model.into();
    let archive = match options.archive_layout.resolve(model) {
        ArchiveLayout::Chained => compress_chained(images, model, options)?,
        _ => compress_independent(images, model, options)?,
    };
    Ok(archive.to_bytes()?)
}

/// Entries coded in parallel, each into its own tile streams.
fn compress_independent(
    images: &[NamedImage],
    model: Option<&Model>,
    options: &EncodeOptions,
) -> Result<Archive, ImageCodecError> {
    let version = Version::NEWEST;
    let reference = reference(model, options);
    let count = images.len() as u64;
    let entries = on_threads(options.threads, || {
        images
            .par_iter()
            .enumerate()
            .map(|(index, named)| {
                let position = EntryPosition {
                    index: index as u64,
                    count,
                    name: &named.name,
                };
                let encode = || {
                    let header = image_header(&named.image, model, options)?;
                    let extensions = &named.image.extensions;
                    let check =
                        TileCheck::new(version, reference, &header, extensions, Some(position))?;
                    encode_coded(&named.image, header, model, &check)
                };
                let image = encode().map_err(|e| entry_error(&named.name, e))?;
                Ok(ArchiveEntry {
                    name: named.name.clone(),
                    image,
                })
            })
            .collect::<Result<Vec<_>, ImageCodecError>>()
    })?;
    Ok(Archive {
        version,
        model: reference,
        entries,
        chain: None,
    })
}

/// An entry ready for the chain: its header, what its context coder sees, and its tiles' pixel
/// bytes.
struct ChainEntry {
    header: crate::format::ImageHeader,
    content: PlaneContent,
    layouts: Vec<TileLayout>,
    tiles: Vec<Vec<u8>>,
}

/// Entries coded one after the other onto one stream (format version 4).
fn compress_chained(
    images: &[NamedImage],
    model: Option<&Model>,
    options: &EncodeOptions,
) -> Result<Archive, ImageCodecError> {
    let version = Version::NEWEST;
    let reference = reference(model, options);
    let count = images.len() as u64;
    let mut check = ChainCheck::new();
    let mut prepared = Vec::with_capacity(images.len());
    for (index, named) in images.iter().enumerate() {
        let position = EntryPosition {
            index: index as u64,
            count,
            name: &named.name,
        };
        let entry = chain_entry(&named.image, model, options, &mut check, position)
            .map_err(|e| entry_error(&named.name, e))?;
        prepared.push(entry);
    }
    let mut coder = entropy::start_stream(StreamStart::Checksum(check.finish()));
    for (named, entry) in images.iter().zip(&prepared) {
        let count = entry.layouts.len() as u64;
        for (index, (layout, samples)) in entry.layouts.iter().zip(&entry.tiles).enumerate() {
            let coding = TileCoding {
                model,
                version,
                format: named.image.pixel_format,
                content: entry.content,
                layout,
            };
            coding.push(&mut coder, samples).map_err(|error| {
                let tile = ImageCodecError::Tile {
                    index: index as u64,
                    count,
                    error,
                };
                entry_error(&named.name, tile)
            })?;
        }
    }
    let chain = entropy::finish_stream(coder).map_err(ImageCodecError::Chain)?;
    let entries = images
        .iter()
        .zip(prepared)
        .map(|(named, entry)| ArchiveEntry {
            name: named.name.clone(),
            image: CodedImage {
                header: entry.header,
                extensions: named.image.extensions.clone(),
                tiles: Vec::new(),
            },
        })
        .collect();
    Ok(Archive {
        version,
        model: reference,
        entries,
        chain: Some(chain),
    })
}

/// One entry's header and tiles, added to the chain's checksum.
fn chain_entry(
    image: &Image,
    model: Option<&Model>,
    options: &EncodeOptions,
    check: &mut ChainCheck,
    position: EntryPosition<'_>,
) -> Result<ChainEntry, ImageCodecError> {
    let header = image_header(image, model, options)?;
    let content = plane_content(image.pixel_format, &image.extensions)?;
    check.entry(
        Version::NEWEST,
        reference(model, options),
        &header,
        &image.extensions,
        position,
    )?;
    let layouts = layouts(&header, model);
    let bytes_per_pixel = usize::from(image.pixel_format.bytes_per_pixel());
    let tiles = layouts
        .iter()
        .enumerate()
        .map(|(index, layout)| {
            let samples =
                tile::copy_rect(&image.samples, image.width, bytes_per_pixel, layout.rect);
            check.tile(index as u64, &samples);
            samples
        })
        .collect();
    Ok(ChainEntry {
        header,
        content,
        layouts,
        tiles,
    })
}

/// Decodes every entry of an archive, in archive order, into memory. To decode an archive of
/// any size in bounded memory, use [`ArchiveDecoder::decode_each`].
pub fn decompress_archive(
    bytes: &[u8],
    models: &dyn ModelLookup,
    options: &DecodeOptions,
) -> Result<Vec<NamedImage>, ImageCodecError> {
    let decoder = ArchiveDecoder::new(bytes, models, options)?;
    let mut images = Vec::new();
    decoder.decode_each(|image| {
        images.push(image);
        Ok::<_, ImageCodecError>(())
    })?;
    Ok(images)
}

/// An archive read and checked up to its payloads (container, model, every entry against the
/// limits and the memory budget), ready to decode entry by entry.
///
/// ```
/// use idfcodec_codec::format::EntryName;
/// use idfcodec_codec::{compress_archive, ArchiveDecoder, DecodeOptions, EncodeOptions};
/// use idfcodec_codec::{Image, NamedImage, PixelFormat, Registry};
///
/// // three 8-bit RGB images, context-coded (no learned model), in one archive
/// let images = (0..3u8)
///     .map(|k| {
///         let samples = (0..16 * 8 * 3).map(|i| (i as u8).wrapping_mul(k + 1)).collect();
///         let image = Image::new(16, 8, PixelFormat::Rgb8, samples)?;
///         Ok(NamedImage { name: EntryName::new(format!("img/{k}.png"))?, image })
///     })
///     .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
/// let archive = compress_archive(&images, None, &EncodeOptions::default())?;
///
/// // decoded entry by entry, in archive order, within DecodeOptions::max_memory
/// let decoder = ArchiveDecoder::new(&archive, Registry::embedded(), &DecodeOptions::default())?;
/// let mut back = Vec::new();
/// decoder.decode_each(|entry| {
///     back.push(entry);
///     Ok::<_, idfcodec_codec::ImageCodecError>(())
/// })?;
/// assert_eq!(back, images);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArchiveDecoder<'a> {
    archive: Archive<&'a [u8]>,
    model: Option<&'a Model>,
    options: DecodeOptions,
    /// Each entry's [`decode_memory`].
    memory: Vec<u64>,
}

impl<'a> ArchiveDecoder<'a> {
    /// Reads the archive's container and finds its model. Refuses, before decoding anything, an
    /// archive whose model is missing or whose entries break the limits, or an entry that alone
    /// needs more than [`DecodeOptions::max_memory`].
    pub fn new(
        bytes: &'a [u8],
        models: &'a dyn ModelLookup,
        options: &DecodeOptions,
    ) -> Result<Self, ImageCodecError> {
        let archive = Archive::read(bytes, &options.limits)?;
        let model = checked_model(models, archive.model)?.map(|n| n.model);
        let mut memory = Vec::with_capacity(archive.entries.len());
        for entry in &archive.entries {
            check_decodable(&entry.image, model, options)
                .and_then(|()| {
                    let needed = decode_memory(&entry.image.header, model, options.threads);
                    check_memory(needed, options.max_memory)?;
                    memory.push(needed);
                    Ok(())
                })
                .map_err(|e| entry_error(&entry.name, e))?;
        }
        if archive.chain.is_some() {
            check_memory(chain_memory(&archive, model), options.max_memory)?;
        }
        Ok(ArchiveDecoder {
            archive,
            model,
            options: *options,
            memory,
        })
    }

    /// The entries' names, in archive order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &EntryName> + '_ {
        self.archive.entries.iter().map(|e| &e.name)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.archive.entries.len()
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.archive.entries.is_empty()
    }

    /// Whether the archive is chained (one stream for all entries; see the module docs).
    pub fn is_chained(&self) -> bool {
        self.archive.chain.is_some()
    }

    /// Decodes the entries in archive order and gives each to `each` as soon as it and the
    /// entries before it are decoded. Independent entries are decoded in parallel in
    /// consecutive batches whose memory together stays within [`DecodeOptions::max_memory`], so
    /// an archive of any size decodes in bounded memory; a chained archive is decoded whole
    /// (checked against the budget by [`ArchiveDecoder::new`]) before the first entry is given.
    /// Stops at the first error, of decoding or of `each`.
    pub fn decode_each<E: From<ImageCodecError>>(
        &self,
        mut each: impl FnMut(NamedImage) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(chain) = self.archive.chain {
            for image in self.decode_chain(chain)? {
                each(image)?;
            }
            return Ok(());
        }
        let count = self.archive.entries.len() as u64;
        let mut start = 0;
        while start < self.archive.entries.len() {
            let end = self.batch_end(start);
            let batch = on_threads(self.options.threads, || {
                (start..end)
                    .into_par_iter()
                    .map(|index| self.decode_entry(index, count))
                    .collect::<Result<Vec<_>, ImageCodecError>>()
            })?;
            for image in batch {
                each(image)?;
            }
            start = end;
        }
        Ok(())
    }

    /// The end of the batch that starts at `start`: as many entries as fit in the memory
    /// budget together (at least one), at most [`MAX_BATCH`].
    fn batch_end(&self, start: usize) -> usize {
        let mut used = 0u64;
        let mut end = start;
        while end < self.memory.len() && end - start < MAX_BATCH {
            used = used.saturating_add(self.memory[end]);
            if end > start && used > self.options.max_memory {
                break;
            }
            end += 1;
        }
        end
    }

    fn decode_entry(&self, index: usize, count: u64) -> Result<NamedImage, ImageCodecError> {
        let entry = &self.archive.entries[index];
        let decode = || {
            let position = EntryPosition {
                index: index as u64,
                count,
                name: &entry.name,
            };
            let check = TileCheck::new(
                self.archive.version,
                self.archive.model,
                &entry.image.header,
                &entry.image.extensions,
                Some(position),
            )?;
            decode_coded(&entry.image, self.model, &check)
        };
        let image = decode().map_err(|e| entry_error(&entry.name, e))?;
        Ok(NamedImage {
            name: entry.name.clone(),
            image,
        })
    }
}

impl ArchiveDecoder<'_> {
    /// Decodes a chained archive's stream: the last entry's last tile first, then checks the
    /// stream's end state against the checksum of everything decoded, then assembles the
    /// entries.
    fn decode_chain(&self, chain: &[u8]) -> Result<Vec<NamedImage>, ImageCodecError> {
        let entries = &self.archive.entries;
        let floor = entropy::CHECKSUM_BASE;
        let mut coder = entropy::open_stream(chain).map_err(ImageCodecError::Chain)?;
        if !self.model.is_some_and(Model::uses_bits_back) {
            entropy::check_not_dry(&coder, floor).map_err(ImageCodecError::Chain)?;
        }
        // per entry, in archive order once reversed: its tile layouts and decoded tiles
        let mut decoded: Vec<(Vec<TileLayout>, Vec<Vec<u8>>)> = Vec::with_capacity(entries.len());
        for entry in entries.iter().rev() {
            let header = entry.image.header;
            let content = plane_content(header.pixel_format, &entry.image.extensions)
                .map_err(|e| entry_error(&entry.name, e))?;
            let layouts = layouts(&header, self.model);
            let count = layouts.len() as u64;
            let mut tiles = Vec::with_capacity(layouts.len());
            for (index, layout) in layouts.iter().enumerate().rev() {
                let coding = TileCoding {
                    model: self.model,
                    version: self.archive.version,
                    format: header.pixel_format,
                    content,
                    layout,
                };
                let samples = coding.pop(&mut coder, floor).map_err(|error| {
                    let tile = ImageCodecError::Tile {
                        index: index as u64,
                        count,
                        error,
                    };
                    entry_error(&entry.name, tile)
                })?;
                tiles.push(samples);
            }
            tiles.reverse();
            decoded.push((layouts, tiles));
        }
        decoded.reverse();
        let mut check = ChainCheck::new();
        let count = entries.len() as u64;
        for (index, (entry, (_, tiles))) in entries.iter().zip(&decoded).enumerate() {
            let position = EntryPosition {
                index: index as u64,
                count,
                name: &entry.name,
            };
            let image = &entry.image;
            check.entry(
                self.archive.version,
                self.archive.model,
                &image.header,
                &image.extensions,
                position,
            )?;
            for (index, samples) in tiles.iter().enumerate() {
                check.tile(index as u64, samples);
            }
        }
        entropy::close_stream(coder, StreamStart::Checksum(check.finish()))
            .map_err(ImageCodecError::Chain)?;
        entries
            .iter()
            .zip(decoded)
            .map(|(entry, (layouts, tiles))| {
                let header = entry.image.header;
                let bytes_per_pixel = usize::from(header.pixel_format.bytes_per_pixel());
                let mut samples = zeroed(header.pixel_bytes())?;
                for (layout, tile_samples) in layouts.iter().zip(tiles) {
                    tile::paste_rect(
                        &tile_samples,
                        &mut samples,
                        header.width,
                        bytes_per_pixel,
                        layout.rect,
                    );
                }
                let image = finish_image(&header, samples, &entry.image.extensions)
                    .map_err(|e| entry_error(&entry.name, e))?;
                Ok(NamedImage {
                    name: entry.name.clone(),
                    image,
                })
            })
            .collect()
    }
}

/// An upper bound of the memory decoding a chained archive takes: every entry's pixels twice
/// (decoded tiles, then the assembled images) and one tile's working memory.
fn chain_memory(archive: &Archive<&[u8]>, model: Option<&Model>) -> u64 {
    let pixels = archive
        .entries
        .iter()
        .map(|e| e.image.header.pixel_bytes())
        .fold(0u64, u64::saturating_add);
    let tile = archive
        .entries
        .iter()
        .filter_map(|e| {
            let header = &e.image.header;
            let layout = layouts(header, model).into_iter().next()?;
            Some(tile_memory(&layout, header.pixel_format, model))
        })
        .max()
        .unwrap_or(0);
    pixels.saturating_mul(2).saturating_add(tile)
}

/// Most archive entries decoded together.
const MAX_BATCH: usize = 256;

fn entry_error(name: &EntryName, error: ImageCodecError) -> ImageCodecError {
    ImageCodecError::Entry {
        name: name.to_string(),
        error: Box::new(error),
    }
}
