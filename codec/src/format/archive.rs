//! Archives: many named coded images sharing one model and one magic.
//!
//! Version 2 and 3 entries are compact: the name is front-coded against the previous entry's name
//! (longest shared prefix, then longest shared suffix of the rest, then the bytes in between),
//! and a flag repeats the previous entry's geometry. Version 1 entries store both in full.
//!
//! Version 4 adds **chained** archives: the entries hold no tile sections; one ANS stream after
//! the last entry, the *chain*, holds every entry's tiles (coded entry after entry on one
//! stack), so a bits-back model's bits carry over from one entry to the next.
//!
//! Version 5 adds **sequential names**: an entry whose name counts on from the previous entry's
//! (`mnist-test-00042.png` after `mnist-test-00041.png`, see [`next_name`]) sets a flag instead
//! of front-coding it, so a numbered set's entries cost one byte each besides their tiles.
//!
//! Version 6 adds **runs** to chained archives: a maximal group of `k ≥ 2` consecutive entries
//! that are each like the previous one (same geometry, name counted on, no
//! extension block) is written as its first entry with a run flag and the count `k − 1`; the
//! others take no bytes, so a numbered set of equal-size images costs a few bytes in all.

use super::cursor::Cursor;
use super::header::{Geometry, ModelBit};
use super::limits::{self, Limits};
use super::magic::{self, FileKind};
use super::{varint, CodedImage, EntryName, FormatError, ImageHeader, ModelRef, Version};
use byteorder::WriteBytesExt;
use std::collections::HashSet;
use std::io::Write;

/// Many coded images, each with a name, all coded with one model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Archive<T = Vec<u8>> {
    pub version: Version,
    pub model: ModelRef,
    pub entries: Vec<ArchiveEntry<T>>,
    /// A chained archive's one stream (version 4; model flags bit 1), holding every entry's
    /// tiles: its entries' `image.tiles` are empty. `None`: each entry holds its own tile
    /// section.
    pub chain: Option<T>,
}

/// One image of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArchiveEntry<T = Vec<u8>> {
    pub name: EntryName,
    pub image: CodedImage<T>,
}

/// The model flags byte: bit 0 external model, bit 1 chained (version 4), other bits reserved
/// (zero).
const EXTERNAL_MODEL: u8 = 0x01;
const CHAINED: u8 = 0x02;

/// The entry flags byte (versions 2 to 6): bit 0 the entry has the previous entry's geometry;
/// bit 1 (version 5) its name is [`next_name`] of the previous entry's, and no name bytes follow;
/// bit 2 (version 6, chained archives only, with bits 0 and 1) a run: a varint `r ≥ 1` follows,
/// and `r` more entries like this one follow that take no bytes; other bits reserved (zero).
const SAME_GEOMETRY: u8 = 0x01;
const SEQUENTIAL_NAME: u8 = 0x02;
const RUN: u8 = 0x04;
/// The flags of an entry like the previous one (see [`is_like`]).
const LIKE: u8 = SAME_GEOMETRY | SEQUENTIAL_NAME;

/// The entry flags a reader of `version` knows in an archive laid out as `sections`.
fn known_entry_flags(version: Version, sections: Sections) -> u8 {
    match version {
        Version::V1 | Version::V2 | Version::V3 | Version::V4 => SAME_GEOMETRY,
        Version::V5 => LIKE,
        Version::V6 if sections == Sections::Chained => LIKE | RUN,
        Version::V6 => LIKE,
    }
}

/// Whether runs may be written: version 6 and later, chained archives only (an entry with its
/// own tile section always takes bytes).
fn runs_allowed(version: Version, sections: Sections) -> bool {
    version >= Version::V6 && sections == Sections::Chained
}

/// Whether an entry whose flags are `flags` and whose image has (`extensions`) an extension block
/// is **like the previous entry**: same geometry, name counted on, and nothing else to store (an
/// extension block is never inherited). Only such entries make up runs.
fn is_like(flags: u8, extensions: bool) -> bool {
    flags & LIKE == LIKE && !extensions
}

/// The name that counts on from `previous`: its last run of ASCII digits read as a decimal number
/// plus one, written with at least as many digits (zero-padded; `099` → `100`, `9` → `10`),
/// everything around it kept. `None` when `previous` holds no digit.
pub fn next_name(previous: &str) -> Option<String> {
    let bytes = previous.as_bytes();
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let start = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let mut digits = bytes[start..end].to_vec();
    let mut carry = true;
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            carry = false;
            break;
        }
    }
    if carry {
        digits.insert(0, b'1');
    }
    // Only ASCII digits changed, so the result is UTF-8 wherever `previous` was.
    let digits = std::str::from_utf8(&digits).expect("ASCII digits");
    Some(format!(
        "{}{digits}{}",
        &previous[..start],
        &previous[end..]
    ))
}

/// Fewest bytes an entry can take. Version 1: name length and one name byte, width, height,
/// descriptor, checksum (4), section length. Versions 2 to 4: flags, shared prefix and suffix
/// lengths, middle length (a name can be the previous one shortened), section length (none in a
/// chained archive). Versions 5 and 6: flags (a sequential name), section length (none when
/// chained). `None`: a version-6 chained archive, where the entries of a run take no bytes at all.
fn min_entry_bytes(version: Version, sections: Sections) -> Option<usize> {
    let chained = sections == Sections::Chained;
    match version {
        Version::V1 => Some(1 + 1 + 1 + 1 + 1 + 4 + 1),
        Version::V2 | Version::V3 | Version::V4 => Some(1 + 1 + 1 + 1 + usize::from(!chained)),
        Version::V5 => Some(1 + usize::from(!chained)),
        Version::V6 if chained => None,
        Version::V6 => Some(1 + 1),
    }
}

impl<T: AsRef<[u8]>> Archive<T> {
    /// Writes the archive. Nothing is written if an entry is invalid or a name repeats.
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), FormatError> {
        self.validate()?;
        magic::write(out, FileKind::Archive, self.version)?;
        let mut flags = 0;
        if self.model.is_external() {
            flags |= EXTERNAL_MODEL;
        }
        if self.chain.is_some() {
            flags |= CHAINED;
        }
        out.write_u8(flags)?;
        self.model.write_id(out)?;
        varint::write(out, self.entries.len() as u64)?;
        let mut previous = Previous::default();
        let sections = match self.chain {
            Some(_) => Sections::Chained,
            None => Sections::PerEntry,
        };
        let runs = self.runs(sections)?;
        let mut index = 0;
        while index < self.entries.len() {
            let entry = &self.entries[index];
            let run = runs.get(index).copied().unwrap_or(0);
            match self.version {
                Version::V1 => entry.write_v1(out)?,
                version => entry.write_front_coded(out, &mut previous, version, sections, run)?,
            }
            index += 1 + run as usize;
            if run > 0 {
                // the run's entries are written; the next entry is coded against its last one
                previous.name = self.entries[index - 1].name.as_str().to_string();
            }
        }
        if let Some(chain) = &self.chain {
            out.write_all(chain.as_ref())?;
        }
        Ok(())
    }

    /// For each entry, the run it starts (0: none; `r`: the `r` entries after it are like it).
    /// Canonical: every maximal group of `k ≥ 2` consecutive entries that are each like the
    /// previous one is one run of `k − 1` started by the group's first entry. Empty where runs
    /// are not allowed.
    fn runs(&self, sections: Sections) -> Result<Vec<u64>, FormatError> {
        if !runs_allowed(self.version, sections) {
            return Ok(Vec::new());
        }
        let mut like = Vec::with_capacity(self.entries.len());
        let mut previous: Option<(Vec<u8>, &str)> = None;
        for entry in &self.entries {
            let mut geometry = Vec::new();
            entry.image.write_geometry(&mut geometry, false)?;
            like.push(previous.as_ref().is_some_and(|(g, name)| {
                *g == geometry
                    && next_name(name).as_deref() == Some(entry.name.as_str())
                    && entry.image.extensions.is_empty()
            }));
            previous = Some((geometry, entry.name.as_str()));
        }
        let mut runs = vec![0; self.entries.len()];
        let mut start = 0;
        while start < like.len() {
            let len = like[start..].iter().take_while(|&&l| l).count();
            if len >= 2 {
                runs[start] = len as u64 - 1;
            }
            start += len.max(1);
        }
        Ok(runs)
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    fn validate(&self) -> Result<(), FormatError> {
        if self.entries.is_empty() {
            return Err(FormatError::FieldOutOfRange {
                field: "archive entry count",
                value: 0,
                range: "1 or more (an archive holds at least one image)",
            });
        }
        if let Some(chain) = &self.chain {
            if self.version < Version::V4 {
                return Err(FormatError::NotInVersion {
                    version: self.version,
                    what: "a chained archive",
                });
            }
            if chain.as_ref().is_empty() {
                return Err(FormatError::Truncated {
                    what: "archive chain",
                });
            }
        }
        let mut names = HashSet::with_capacity(self.entries.len());
        for entry in &self.entries {
            match self.chain {
                None => entry.image.validate(self.version)?,
                Some(_) => entry.image.validate_chained(self.version)?,
            }
            if !names.insert(entry.name.as_str()) {
                return Err(FormatError::DuplicateName {
                    name: entry.name.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Where an archive's tiles are: in each entry's own section, or in the archive's one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sections {
    PerEntry,
    Chained,
}

/// What a version-2 entry is coded against: the previous entry's name and geometry bytes.
#[derive(Default)]
struct Previous {
    name: String,
    geometry: Option<Vec<u8>>,
}

impl<T: AsRef<[u8]>> ArchiveEntry<T> {
    /// Version 1: name, geometry, checksum, section length, section.
    fn write_v1(&self, out: &mut impl Write) -> Result<(), FormatError> {
        let name = self.name.as_str().as_bytes();
        varint::write(out, name.len() as u64)?;
        out.write_all(name)?;
        self.image.write_geometry(out, false)?;
        self.write_rest(out, Version::V1)
    }

    /// Versions 2 to 6: flags, run length (a run, version 6), front-coded name (unless
    /// sequential, version 5), geometry (unless the previous entry's), extension block (if any),
    /// section length and section (not in a chained archive). `run`: the entries after this one
    /// that the run covers (0: no run; see [`Archive::runs`]).
    fn write_front_coded(
        &self,
        out: &mut impl Write,
        previous: &mut Previous,
        version: Version,
        sections: Sections,
        run: u64,
    ) -> Result<(), FormatError> {
        let mut geometry = Vec::new();
        self.image.write_geometry(&mut geometry, false)?;
        let same = previous.geometry.as_deref() == Some(geometry.as_slice());
        let sequential = version >= Version::V5
            && next_name(&previous.name).as_deref() == Some(self.name.as_str());
        let mut flags = 0;
        if same {
            flags |= SAME_GEOMETRY;
        }
        if sequential {
            flags |= SEQUENTIAL_NAME;
        }
        if run > 0 {
            flags |= RUN;
        }
        out.write_u8(flags)?;
        if run > 0 {
            varint::write(out, run)?;
        }
        if !sequential {
            let name = self.name.as_str().as_bytes();
            let (prefix, suffix) = shared(previous.name.as_bytes(), name);
            varint::write(out, prefix as u64)?;
            varint::write(out, suffix as u64)?;
            let middle = &name[prefix..name.len() - suffix];
            varint::write(out, middle.len() as u64)?;
            out.write_all(middle)?;
        }
        if !same {
            out.write_all(&geometry)?;
        }
        match sections {
            Sections::PerEntry => self.write_rest(out, version)?,
            Sections::Chained => self.image.write_trailer(out, version)?,
        }
        previous.name = self.name.as_str().to_string();
        previous.geometry = Some(geometry);
        Ok(())
    }

    /// After the geometry: checksum or extension block, section length, section.
    fn write_rest(&self, out: &mut impl Write, version: Version) -> Result<(), FormatError> {
        self.image.write_trailer(out, version)?;
        varint::write(out, self.image.section_len())?;
        self.image.write_section(out)
    }
}

/// The front coding of `name` after `previous`: the longest shared prefix, then the longest
/// shared suffix of what remains of both (so prefix and suffix never overlap in either name).
fn shared(previous: &[u8], name: &[u8]) -> (usize, usize) {
    let prefix = previous
        .iter()
        .zip(name)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = previous[prefix..]
        .iter()
        .rev()
        .zip(name[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    (prefix, suffix)
}

/// The running total of name bytes against [`Limits::max_name_bytes`], checked before each name
/// is allocated.
struct NameBudget {
    used: u64,
    limit: u64,
}

impl NameBudget {
    fn take(&mut self, len: u64) -> Result<(), FormatError> {
        self.used = self.used.saturating_add(len);
        limits::check(
            "total entry name bytes",
            self.used,
            self.limit,
            "--max-name-bytes",
        )
    }
}

impl<'a> Archive<&'a [u8]> {
    /// Parses an archive of either version, checking limits before allocating and rejecting
    /// trailing bytes, invalid names, repeated names and non-canonical entries.
    pub fn read(bytes: &'a [u8], limits: &Limits) -> Result<Self, FormatError> {
        let mut cur = Cursor::new(bytes);
        let version = magic::read(&mut cur, FileKind::Archive)?;
        let flags = cur.u8("model flags byte")?;
        let known = match version >= Version::V4 {
            true => EXTERNAL_MODEL | CHAINED,
            false => EXTERNAL_MODEL,
        };
        if flags & !known != 0 {
            return Err(FormatError::ReservedBits {
                field: "model flags byte",
                value: flags,
            });
        }
        let sections = match flags & CHAINED != 0 {
            true => Sections::Chained,
            false => Sections::PerEntry,
        };
        let model = ModelRef::read_id(&mut cur, flags & EXTERNAL_MODEL != 0)?;
        let count = cur.varint("entry count")?;
        if count == 0 {
            return Err(FormatError::FieldOutOfRange {
                field: "archive entry count",
                value: 0,
                range: "1 or more (an archive holds at least one image)",
            });
        }
        limits::check(
            "archive entry count",
            count,
            limits.max_entries,
            "--max-entries",
        )?;
        // every stored entry takes at least one byte, so this bounds the first allocation; only
        // a version-6 run makes entries that take none (bounded by `count`, checked above, and
        // each run by the entries left, checked before it is expanded)
        let capacity = match min_entry_bytes(version, sections) {
            Some(min) if count > (cur.remaining() / min) as u64 => {
                return Err(FormatError::Truncated {
                    what: "archive entries",
                })
            }
            Some(_) => count,
            // what the bytes could hold without runs, about half of it (runs grow the vector)
            None => count.min(cur.remaining() as u64 / 2),
        };
        let mut entries: Vec<ArchiveEntry<&'a [u8]>> = Vec::with_capacity(capacity as usize);
        let mut budget = NameBudget {
            used: 0,
            limit: limits.max_name_bytes,
        };
        let mut previous_geometry = None;
        // whether the last entry read is like the one before it (version 6 chained: then the
        // next one must not be, or it would have been in the same run)
        let mut previous_like = false;
        while (entries.len() as u64) < count {
            let entry = match version {
                Version::V1 => ArchiveEntry::read_v1(&mut cur, limits, &mut budget)?,
                version => {
                    let previous_name = entries.last().map_or("", |e| e.name.as_str());
                    let left = count - entries.len() as u64 - 1;
                    let read = ArchiveEntry::read_front_coded(
                        &mut cur,
                        limits,
                        &mut budget,
                        (previous_name, &mut previous_geometry),
                        version,
                        (sections, left),
                    )?;
                    if runs_allowed(version, sections) {
                        if read.like && previous_like {
                            return Err(FormatError::NonCanonical {
                                what: "consecutive archive entries like the previous one (same \
                                       geometry, name counted on) must be written as one run",
                            });
                        }
                        previous_like = read.like;
                    }
                    let header = read.entry.image.header;
                    entries.push(read.entry);
                    for _ in 0..read.run {
                        let entry = ArchiveEntry::counted_on(
                            entries.last().expect("the run's first entry"),
                            header,
                            limits,
                            &mut budget,
                        )?;
                        entries.push(entry);
                    }
                    continue;
                }
            };
            entries.push(entry);
        }
        check_unique(&entries)?;
        match (sections, cur.remaining()) {
            (Sections::PerEntry, 0) => Ok(Archive {
                version,
                model,
                entries,
                chain: None,
            }),
            (Sections::PerEntry, count) => Err(FormatError::TrailingBytes { count }),
            (Sections::Chained, 0) => Err(FormatError::Truncated {
                what: "archive chain",
            }),
            (Sections::Chained, _) => Ok(Archive {
                version,
                model,
                entries,
                chain: Some(cur.into_rest()),
            }),
        }
    }
}

/// Refuses repeated names (sorting references: no copies of the names).
fn check_unique<T>(entries: &[ArchiveEntry<T>]) -> Result<(), FormatError> {
    let mut names: Vec<&EntryName> = entries.iter().map(|e| &e.name).collect();
    names.sort_unstable();
    match names.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(FormatError::DuplicateName {
            name: pair[0].to_string(),
        }),
        None => Ok(()),
    }
}

/// An entry read by [`ArchiveEntry::read_front_coded`], and the run it starts.
struct ReadEntry<'a> {
    entry: ArchiveEntry<&'a [u8]>,
    /// Whether it is like the previous entry ([`is_like`]).
    like: bool,
    /// The entries after it that its run covers (0: no run).
    run: u64,
}

impl<'a> ArchiveEntry<&'a [u8]> {
    /// An entry of a run: the previous entry's name counted on, the run's `header`, no extension
    /// records and no bytes of its own (version 6).
    fn counted_on(
        previous: &Self,
        header: ImageHeader,
        limits: &Limits,
        budget: &mut NameBudget,
    ) -> Result<Self, FormatError> {
        // the run's first entry counted on, so every name in the run has a number
        let name = next_name(previous.name.as_str()).expect("a counted-on name has a number");
        check_name_len(name.len() as u64)?;
        budget.take(name.len() as u64)?;
        Ok(ArchiveEntry {
            name: EntryName::new(name)?,
            image: CodedImage::chained(header, Vec::new(), limits)?,
        })
    }

    fn read_v1(
        cur: &mut Cursor<'a>,
        limits: &Limits,
        budget: &mut NameBudget,
    ) -> Result<Self, FormatError> {
        let name_len = cur.varint("entry name length")?;
        check_name_len(name_len)?;
        budget.take(name_len)?;
        let name = EntryName::from_bytes(cur.take(name_len, "entry name")?)?;
        let geometry = ImageHeader::read_geometry(cur, limits, ModelBit::Reserved, Version::V1)?;
        let image = read_rest(cur, geometry, Version::V1, limits)?;
        Ok(ArchiveEntry { name, image })
    }

    /// Versions 2 to 6 (see [`ArchiveEntry::write_front_coded`]); `left`: the entries after
    /// this one, which bound its run.
    fn read_front_coded(
        cur: &mut Cursor<'a>,
        limits: &Limits,
        budget: &mut NameBudget,
        (previous_name, previous_geometry): (&str, &mut Option<&'a [u8]>),
        version: Version,
        (sections, left): (Sections, u64),
    ) -> Result<ReadEntry<'a>, FormatError> {
        let flags = cur.u8("entry flags byte")?;
        if flags & !known_entry_flags(version, sections) != 0 {
            return Err(FormatError::ReservedBits {
                field: "entry flags byte",
                value: flags,
            });
        }
        let run = match flags & RUN != 0 {
            false => 0,
            true if flags & LIKE != LIKE => {
                return Err(FormatError::NonCanonical {
                    what: "a run of archive entries must start with an entry like the previous \
                           one (the same-geometry and sequential-name flags set)",
                })
            }
            true => {
                let run = cur.varint("archive entry run length")?;
                if run == 0 || run > left {
                    return Err(FormatError::FieldOutOfRange {
                        field: "archive entry run length",
                        value: run,
                        range: "1..=the entries after the run's first entry",
                    });
                }
                run
            }
        };
        let next = match version >= Version::V5 {
            true => next_name(previous_name),
            false => None,
        };
        let name = match (flags & SEQUENTIAL_NAME != 0, next) {
            (true, Some(next)) => {
                check_name_len(next.len() as u64)?;
                budget.take(next.len() as u64)?;
                EntryName::new(next)?
            }
            (true, None) => {
                return Err(FormatError::NonCanonical {
                    what: "a sequential archive entry name needs a previous name with a number \
                           to count on from",
                })
            }
            (false, next) => {
                let name = read_front_coded(cur, previous_name.as_bytes(), budget)?;
                if next.as_deref() == Some(name.as_str()) {
                    return Err(FormatError::NonCanonical {
                        what: "an archive entry named by counting on from the previous name \
                               must set the sequential-name flag instead of spelling it",
                    });
                }
                name
            }
        };
        let read_geometry = |cur: &mut Cursor<'_>| {
            ImageHeader::read_geometry(cur, limits, ModelBit::Reserved, version)
        };
        let geometry = if flags & SAME_GEOMETRY != 0 {
            let bytes = previous_geometry.ok_or(FormatError::NonCanonical {
                what: "the first archive entry cannot repeat a previous entry's geometry",
            })?;
            read_geometry(&mut Cursor::new(bytes))?
        } else {
            let start = cur.rest();
            let geometry = read_geometry(cur)?;
            let bytes = &start[..start.len() - cur.remaining()];
            if *previous_geometry == Some(bytes) {
                return Err(FormatError::NonCanonical {
                    what: "an archive entry with the previous entry's geometry must set the \
                           same-geometry flag instead of repeating it",
                });
            }
            *previous_geometry = Some(bytes);
            geometry
        };
        if run > 0 && geometry.extensions {
            return Err(FormatError::NonCanonical {
                what: "a run of archive entries cannot repeat an image with an extension block \
                       (the records are never inherited)",
            });
        }
        let extensions = geometry.extensions;
        let image = match sections {
            Sections::PerEntry => read_rest(cur, geometry, version, limits)?,
            Sections::Chained => {
                let (header, extensions) = CodedImage::read_trailer(cur, geometry, version)?;
                CodedImage::chained(header, extensions, limits)?
            }
        };
        Ok(ReadEntry {
            entry: ArchiveEntry { name, image },
            like: is_like(flags, extensions),
            run,
        })
    }
}

fn check_name_len(len: u64) -> Result<(), FormatError> {
    if len > super::MAX_NAME_BYTES as u64 {
        return Err(FormatError::FieldOutOfRange {
            field: "entry name length",
            value: len,
            range: "1..=1024",
        });
    }
    Ok(())
}

/// A varint `field` of at most `max` (`range` describes the bound in errors).
fn read_at_most(
    cur: &mut Cursor<'_>,
    field: &'static str,
    max: usize,
    range: &'static str,
) -> Result<usize, FormatError> {
    let value = cur.varint(field)?;
    if value > max as u64 {
        return Err(FormatError::FieldOutOfRange {
            field,
            value,
            range,
        });
    }
    Ok(value as usize)
}

/// Reads a front-coded name and checks that its coding is the one [`shared`] gives.
fn read_front_coded(
    cur: &mut Cursor<'_>,
    previous: &[u8],
    budget: &mut NameBudget,
) -> Result<EntryName, FormatError> {
    let prefix = read_at_most(
        cur,
        "shared name prefix length",
        previous.len(),
        "0..=the length of the previous name",
    )?;
    let suffix = read_at_most(
        cur,
        "shared name suffix length",
        previous.len() - prefix,
        "0..=the length of the previous name after the shared prefix",
    )?;
    let middle_len = cur.varint("name middle length")?;
    let len = middle_len.saturating_add((prefix + suffix) as u64);
    check_name_len(len)?;
    budget.take(len)?;
    let middle = cur.take(middle_len, "entry name")?;
    let bytes = [
        &previous[..prefix],
        middle,
        &previous[previous.len() - suffix..],
    ]
    .concat();
    let name = EntryName::from_bytes(&bytes)?;
    if shared(previous, &bytes) != (prefix, suffix) {
        return Err(FormatError::NonCanonical {
            what: "an archive entry name must share the longest possible prefix with the \
                   previous name, then the longest possible suffix",
        });
    }
    Ok(name)
}

/// After the geometry: checksum or extension block, section length, section.
fn read_rest<'a>(
    cur: &mut Cursor<'a>,
    geometry: Geometry,
    version: Version,
    limits: &Limits,
) -> Result<CodedImage<&'a [u8]>, FormatError> {
    let (header, extensions) = CodedImage::read_trailer(cur, geometry, version)?;
    let section_len = cur.varint("entry section length")?;
    let section = cur.take(section_len, "entry tiles")?;
    CodedImage::read_section(header, extensions, section, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_name_counts_the_last_number() {
        let cases: [(&str, Option<&str>); 9] = [
            ("mnist-test-00041.png", Some("mnist-test-00042.png")),
            ("mnist-test-00099.png", Some("mnist-test-00100.png")),
            ("img9.png", Some("img10.png")),
            ("99", Some("100")),
            ("0", Some("1")),
            ("run-2/x.png", Some("run-3/x.png")),
            ("a1b2c19.png", Some("a1b2c20.png")),
            ("ü7名", Some("ü8名")),
            ("a.png", None),
        ];
        for (previous, next) in cases {
            assert_eq!(next_name(previous).as_deref(), next, "{previous}");
        }
        assert_eq!(next_name(""), None);
    }

    #[test]
    fn front_coding_shares_prefix_then_suffix() {
        let cases: [(&str, &str, (usize, usize)); 7] = [
            ("", "a.png", (0, 0)),
            ("mnist-test-00001.png", "mnist-test-00002.png", (15, 4)),
            ("mnist-test-00009.png", "mnist-test-00010.png", (14, 4)),
            ("ab", "a", (1, 0)),
            ("a", "ab", (1, 0)),
            // the suffix never reaches into the prefix
            ("aa", "aaa", (2, 0)),
            ("x/y.png", "z/y.png", (0, 6)),
        ];
        for (previous, name, expected) in cases {
            assert_eq!(
                shared(previous.as_bytes(), name.as_bytes()),
                expected,
                "{previous} -> {name}"
            );
        }
    }
}
