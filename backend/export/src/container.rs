//! The bundle's zip container, written here rather than by the `zip` crate: that crate deflates
//! a file on one thread and takes no compressed bytes from outside, and deflating
//! `entries.jsonl` (most of a bundle) on one thread held the export back. Here a file is cut
//! into pieces of [`PIECE`] bytes that the rayon pool deflates side by side (pigz's way: each
//! piece a raw deflate stream ended by a sync flush, primed with the 32 KiB before it, so they
//! join into one stream), and the pieces' CRC-32s are combined in order.
//!
//! The container is plain PKZIP (APPNOTE 6.3.x): for each file a local header, its deflated
//! bytes, and — patched in once they are known, so no data descriptor is needed — its CRC and
//! sizes; then the central directory and its end record. Every local header carries a ZIP64
//! extra field (a file's size is not known when its header is written); the central directory
//! uses ZIP64 fields, and the ZIP64 end records, only where a size, an offset or the count
//! outgrow the classic fields. Any unzip, Python's `zipfile` and the `zip` crate read it.

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::sync::mpsc;

use flate2::{Compress, Compression, FlushCompress};
use sha2::{Digest as _, Sha256};

/// Bytes of a file deflated as one piece: big enough that a piece's own overhead (its flush
/// marker, a cold start of the match finder) is nothing, small enough that the pool's threads
/// stay busy and little waits in memory.
pub(crate) const PIECE: usize = 1 << 18;
/// Pieces handed to the pool and not yet written: bounds the memory held.
const IN_FLIGHT: usize = 4;
/// The history a piece is primed with: deflate's whole window.
const WINDOW: usize = 32 << 10;
/// Deflate's fastest level: the entries are base64 and hashes, which slower levels shrink only
/// a little more.
const LEVEL: u32 = 1;
/// A final, empty stored block: what ends a stream of sync-flushed pieces.
const LAST_BLOCK: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];
/// "Version needed to extract" (and made by): 4.5, ZIP64.
const VERSION: u16 = 45;
/// Made by Unix, so the external attributes below are Unix mode bits.
const MADE_BY: u16 = (3 << 8) | VERSION;
/// A regular file, rw-r--r--.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
const DEFLATED: u16 = 8;

/// A file's place in the zip, for the central directory.
struct Written {
    name: String,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
}

/// A zip being written to `W`, one file after another.
pub(crate) struct ZipOut<W: Write + Seek> {
    out: W,
    /// Bytes written so far: the next header's offset.
    at: u64,
    files: Vec<Written>,
    /// MS-DOS time and date of every file.
    time: u16,
    date: u16,
    /// Sizes, offsets and counts above this take ZIP64 fields (below `u32::MAX` only in tests,
    /// which cannot write 4 GiB to show them).
    zip64_above: u64,
}

impl<W: Write + Seek> ZipOut<W> {
    /// `at` is the date and time the files carry (zip keeps local time to 2 s, no zone).
    pub(crate) fn new(out: W, at: chrono::NaiveDateTime) -> Self {
        let (time, date) = dos_time(at);
        Self {
            out,
            at: 0,
            files: Vec::new(),
            time,
            date,
            zip64_above: u64::from(u32::MAX - 1),
        }
    }

    #[cfg(test)]
    fn with_zip64_above(mut self, limit: u64) -> Self {
        self.zip64_above = limit;
        self
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// Starts file `name`: its local header, with the CRC and sizes still to come.
    fn begin(&mut self, name: &str) -> std::io::Result<u64> {
        let offset = self.at;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // flags
        h.extend_from_slice(&DEFLATED.to_le_bytes());
        h.extend_from_slice(&self.time.to_le_bytes());
        h.extend_from_slice(&self.date.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes()); // CRC, patched
        h.extend_from_slice(&u32::MAX.to_le_bytes()); // sizes: in the ZIP64 field
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        h.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // uncompressed, patched
        h.extend_from_slice(&0u64.to_le_bytes()); // compressed, patched
        self.put(&h)?;
        Ok(offset)
    }

    /// Ends the file begun at `offset`: patches its CRC and sizes into its local header.
    fn end(&mut self, name: &str, offset: u64, crc: u32, uncompressed: u64) -> std::io::Result<()> {
        let data_at = offset + 30 + name.len() as u64 + 20;
        let compressed = self.at - data_at;
        self.out.seek(SeekFrom::Start(offset + 14))?;
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(data_at - 16))?;
        self.out.write_all(&uncompressed.to_le_bytes())?;
        self.out.write_all(&compressed.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(self.at))?;
        self.files.push(Written {
            name: name.to_owned(),
            crc,
            compressed,
            uncompressed,
            offset,
        });
        Ok(())
    }

    /// Writes the central directory and its end records; the zip is whole.
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        let limit = self.zip64_above;
        let directory_at = self.at;
        let files = std::mem::take(&mut self.files);
        for f in &files {
            let mut extra = Vec::new();
            let mut field = |value: u64| -> u32 {
                if value > limit {
                    extra.extend_from_slice(&value.to_le_bytes());
                    u32::MAX
                } else {
                    value as u32
                }
            };
            // The ZIP64 field's values go in this order: uncompressed, compressed, offset.
            let uncompressed = field(f.uncompressed);
            let compressed = field(f.compressed);
            let offset = field(f.offset);
            let mut h = Vec::with_capacity(46 + f.name.len() + 4 + extra.len());
            h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            h.extend_from_slice(&MADE_BY.to_le_bytes());
            h.extend_from_slice(&VERSION.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&DEFLATED.to_le_bytes());
            h.extend_from_slice(&self.time.to_le_bytes());
            h.extend_from_slice(&self.date.to_le_bytes());
            h.extend_from_slice(&f.crc.to_le_bytes());
            h.extend_from_slice(&compressed.to_le_bytes());
            h.extend_from_slice(&uncompressed.to_le_bytes());
            h.extend_from_slice(
                &u16::try_from(f.name.len())
                    .unwrap_or(u16::MAX)
                    .to_le_bytes(),
            );
            let extra_len = if extra.is_empty() { 0 } else { 4 + extra.len() };
            h.extend_from_slice(&(extra_len as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // comment
            h.extend_from_slice(&0u16.to_le_bytes()); // disk
            h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            h.extend_from_slice(&EXTERNAL_ATTRIBUTES.to_le_bytes());
            h.extend_from_slice(&offset.to_le_bytes());
            h.extend_from_slice(f.name.as_bytes());
            if !extra.is_empty() {
                h.extend_from_slice(&1u16.to_le_bytes());
                h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
                h.extend_from_slice(&extra);
            }
            self.put(&h)?;
        }
        let directory_size = self.at - directory_at;
        let count = files.len() as u64;
        let zip64 = directory_at > limit || directory_size > limit || count >= u64::from(u16::MAX);
        if zip64 {
            let record_at = self.at;
            let mut r = Vec::with_capacity(56 + 20);
            r.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            r.extend_from_slice(&44u64.to_le_bytes()); // the record's size after this field
            r.extend_from_slice(&MADE_BY.to_le_bytes());
            r.extend_from_slice(&VERSION.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes()); // this disk
            r.extend_from_slice(&0u32.to_le_bytes()); // the directory's disk
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&count.to_le_bytes());
            r.extend_from_slice(&directory_size.to_le_bytes());
            r.extend_from_slice(&directory_at.to_le_bytes());
            // The locator.
            r.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            r.extend_from_slice(&0u32.to_le_bytes());
            r.extend_from_slice(&record_at.to_le_bytes());
            r.extend_from_slice(&1u32.to_le_bytes());
            self.put(&r)?;
        }
        let small = |value: u64, max: u64| if zip64 { max } else { value };
        let mut e = Vec::with_capacity(22);
        e.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        let count16 = small(count, u64::from(u16::MAX)) as u16;
        e.extend_from_slice(&count16.to_le_bytes());
        e.extend_from_slice(&count16.to_le_bytes());
        e.extend_from_slice(&(small(directory_size, u64::from(u32::MAX)) as u32).to_le_bytes());
        e.extend_from_slice(&(small(directory_at, u64::from(u32::MAX)) as u32).to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.put(&e)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Starts file `name`, to be given its bytes through the returned [`Deflating`].
    pub(crate) fn start(&mut self, name: &str) -> std::io::Result<Deflating> {
        let offset = self.begin(name)?;
        Ok(Deflating {
            name: name.to_owned(),
            offset,
            buffer: Vec::with_capacity(PIECE),
            history: Vec::new(),
            pending: VecDeque::new(),
            spares: Vec::new(),
            crc: crc32fast::Hasher::new(),
            sha256: Sha256::new(),
            uncompressed: 0,
        })
    }
}

/// A piece deflated by the pool: its bytes and the CRC-32 of its input, with the buffers it
/// was given back for the next piece.
type Piece = std::io::Result<Deflated>;

struct Deflated {
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
    spare: Buffers,
}

/// A piece's input, the history it is primed with and the room for its output: handed to the
/// pool and back, so a file of any size is deflated in the same few buffers (allocations
/// freed on another thread than made them are what an allocator is slowest to take back).
#[derive(Default)]
struct Buffers {
    input: Vec<u8>,
    history: Vec<u8>,
    output: Vec<u8>,
}

/// A file being deflated on the pool, piece by piece, and written in order; the SHA-256 of its
/// bytes (which the manifest lists) is taken as they come.
pub(crate) struct Deflating {
    name: String,
    offset: u64,
    /// Input not yet a whole piece.
    buffer: Vec<u8>,
    /// The last [`WINDOW`] bytes of the piece before, which the next is primed with.
    history: Vec<u8>,
    pending: VecDeque<mpsc::Receiver<Piece>>,
    /// Buffers back from the pool, for the next pieces.
    spares: Vec<Buffers>,
    crc: crc32fast::Hasher,
    sha256: Sha256,
    uncompressed: u64,
}

impl Deflating {
    /// More of the file's bytes.
    pub(crate) fn write<W: Write + Seek>(
        &mut self,
        zip: &mut ZipOut<W>,
        mut bytes: &[u8],
    ) -> std::io::Result<()> {
        self.sha256.update(bytes);
        self.uncompressed += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = PIECE - self.buffer.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buffer.extend_from_slice(now);
            bytes = rest;
            if self.buffer.len() == PIECE {
                self.send(zip)?;
            }
        }
        Ok(())
    }

    /// Hands the buffered piece to the pool, first writing what is done if too much waits.
    fn send<W: Write + Seek>(&mut self, zip: &mut ZipOut<W>) -> std::io::Result<()> {
        while self.pending.len() >= IN_FLIGHT {
            self.write_oldest(zip)?;
        }
        let mut next = self.spares.pop().unwrap_or_default();
        next.input.clear();
        next.input.reserve(PIECE);
        let mut buffers = Buffers {
            input: std::mem::replace(&mut self.buffer, next.input),
            history: std::mem::replace(&mut self.history, next.history),
            output: next.output,
        };
        self.history.clear();
        self.history
            .extend_from_slice(&buffers.input[buffers.input.len().saturating_sub(WINDOW)..]);
        buffers.output.clear();
        let (tx, rx) = mpsc::sync_channel(1);
        rayon::spawn(move || {
            let _ = tx.send(deflate_piece(buffers));
        });
        self.pending.push_back(rx);
        Ok(())
    }

    fn write_oldest<W: Write + Seek>(&mut self, zip: &mut ZipOut<W>) -> std::io::Result<()> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let Deflated { bytes, crc, spare } = rx
            .recv()
            .map_err(|_| std::io::Error::other("a deflating thread stopped"))??;
        self.crc.combine(&crc);
        zip.put(&bytes)?;
        self.spares.push(Buffers {
            output: bytes,
            ..spare
        });
        Ok(())
    }

    /// Ends the file: the last piece, the stream's last block, its CRC and sizes. Gives the
    /// SHA-256 of its bytes, as lower-case hex.
    pub(crate) fn finish<W: Write + Seek>(
        mut self,
        zip: &mut ZipOut<W>,
    ) -> std::io::Result<String> {
        if !self.buffer.is_empty() {
            self.send(zip)?;
        }
        while !self.pending.is_empty() {
            self.write_oldest(zip)?;
        }
        zip.put(&LAST_BLOCK)?;
        zip.end(
            &self.name,
            self.offset,
            self.crc.finalize(),
            self.uncompressed,
        )?;
        Ok(hex::encode(self.sha256.finalize()))
    }
}

/// Deflates `input` as a raw stream ended by a sync flush (so it ends on a byte boundary and
/// the next piece's stream may follow it), primed with `history`, the bytes before it.
fn deflate_piece(buffers: Buffers) -> Piece {
    let Buffers {
        input,
        history,
        output: mut out,
    } = buffers;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&input);
    let mut deflate = Compress::new(Compression::new(LEVEL), false);
    if !history.is_empty() {
        deflate
            .set_dictionary(&history)
            .map_err(std::io::Error::other)?;
    }
    out.reserve(input.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity() / 2 + 1024);
        }
        let consumed = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        deflate
            .compress_vec(rest, &mut out, FlushCompress::Sync)
            .map_err(std::io::Error::other)?;
        // The flush is complete when all input is taken and the output did not fill its room.
        if deflate.total_in() == input.len() as u64 && out.len() < out.capacity() {
            return Ok(Deflated {
                bytes: out,
                crc,
                spare: Buffers {
                    input,
                    history,
                    output: Vec::new(),
                },
            });
        }
    }
}

/// MS-DOS time and date (years before 1980 are 1980-01-01).
fn dos_time(at: chrono::NaiveDateTime) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    if at.year() < 1980 || at.year() > 2107 {
        return (0, (1 << 5) | 1);
    }
    let time = (at.hour() << 11) | (at.minute() << 5) | (at.second() / 2);
    let date = ((at.year() as u32 - 1980) << 9) | (at.month() << 5) | at.day();
    (time as u16, date as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Bytes that deflate somewhat, as entries do, and differ from piece to piece.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 7 == 0 {
                    b'\n'
                } else {
                    b"ABCDEFGHIJKLMNOPabcdefgh0123456789-_"[(state % 36) as usize]
                }
            })
            .collect()
    }

    fn write_zip(files: &[(&str, &[u8])], zip64_above: Option<u64>) -> Vec<u8> {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 5)
            .and_then(|d| d.and_hms_opt(21, 7, 33))
            .expect("date");
        let mut zip = ZipOut::new(std::io::Cursor::new(Vec::new()), at);
        if let Some(limit) = zip64_above {
            zip = zip.with_zip64_above(limit);
        }
        for (name, bytes) in files {
            let mut file = zip.start(name).expect("start");
            // In uneven writes, as the pass hands them.
            for part in bytes.chunks(300_007) {
                file.write(&mut zip, part).expect("write");
            }
            let sha = file.finish(&mut zip).expect("finish");
            assert_eq!(sha, hex::encode(Sha256::digest(bytes)));
        }
        zip.finish().expect("finish").into_inner()
    }

    fn read_back(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).expect("file");
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)
                    .expect("read (the CRC is checked at the end)");
                (file.name().expect("a name").to_string(), bytes)
            })
            .collect()
    }

    #[test]
    fn a_file_of_many_pieces_is_one_stream_with_the_crc_of_the_whole() {
        let big = sample(PIECE * 3 + 12_345);
        let zip = write_zip(&[("entries.jsonl", &big), ("empty.csv", b"")], None);
        let back = read_back(&zip);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, "entries.jsonl");
        assert!(back[0].1 == big, "the pieces join into the file");
        assert_eq!(back[1], ("empty.csv".to_owned(), Vec::new()));
        // The central directory's CRC is the whole file's (the zip crate checked the bytes
        // against it as it read them; here it is checked against crc32fast of the whole).
        let archive = zip::ZipArchive::new(std::io::Cursor::new(&zip)).expect("zip");
        let mut archive = archive;
        let file = archive.by_index(0).expect("file");
        assert_eq!(file.crc32(), crc32fast::hash(&big));
        assert_eq!(file.size(), big.len() as u64);
        assert_eq!(
            file.compression(),
            zip::CompressionMethod::Deflated,
            "deflated, as every unzip reads"
        );
        assert!(file.compressed_size() < big.len() as u64);
    }

    #[test]
    fn the_pieces_join_into_one_deflate_stream() {
        let big = sample(PIECE * 2 + 99);
        let pieces: Vec<&[u8]> = big.chunks(PIECE).collect();
        let mut stream = Vec::new();
        let mut crc = crc32fast::Hasher::new();
        let mut history: &[u8] = &[];
        for piece in &pieces {
            let Deflated {
                bytes,
                crc: piece_crc,
                ..
            } = deflate_piece(Buffers {
                input: piece.to_vec(),
                history: history.to_vec(),
                output: Vec::new(),
            })
            .expect("deflate");
            crc.combine(&piece_crc);
            stream.extend_from_slice(&bytes);
            history = &piece[piece.len().saturating_sub(WINDOW)..];
        }
        stream.extend_from_slice(&LAST_BLOCK);
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(stream.as_slice())
            .read_to_end(&mut back)
            .expect("one valid stream");
        assert!(back == big);
        assert_eq!(crc.finalize(), crc32fast::hash(&big));
    }

    #[test]
    fn zip64_fields_and_end_records_are_written_when_sizes_outgrow_the_classic_ones() {
        let big = sample(PIECE + 5);
        let small = b"small".to_vec();
        // Everything above 1,000 bytes takes ZIP64 fields here.
        let zip = write_zip(&[("a.jsonl", &big), ("b.json", &small)], Some(1_000));
        let end = zip.len() - 22;
        assert_eq!(&zip[end..end + 4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(
            &zip[end - 20..end - 16],
            &0x0706_4b50u32.to_le_bytes(),
            "a ZIP64 end locator"
        );
        assert_eq!(
            &zip[end + 16..end + 20],
            &u32::MAX.to_le_bytes(),
            "the directory's offset is in the ZIP64 record"
        );
        let back = read_back(&zip);
        assert!(back[0].1 == big);
        assert_eq!(back[1].1, small);
    }

    #[test]
    fn a_small_zip_has_no_zip64_end_records() {
        let zip = write_zip(&[("a.txt", b"hello")], None);
        let end = zip.len() - 22;
        assert_eq!(&zip[end..end + 4], &0x0605_4b50u32.to_le_bytes());
        assert_ne!(&zip[end - 20..end - 16], &0x0706_4b50u32.to_le_bytes());
        assert_eq!(
            read_back(&zip),
            vec![("a.txt".to_owned(), b"hello".to_vec())]
        );
    }

    /// What Python's `zipfile` and Info-ZIP's `unzip -t` make of `zip`: each file's name and
    /// the SHA-256 of its bytes as Python reads them (both check every CRC).
    fn ordinary_tools_read(zip: &[u8]) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bundle.zip");
        std::fs::write(&path, zip).expect("write");
        let unzip = std::process::Command::new("unzip")
            .arg("-t")
            .arg(&path)
            .output()
            .expect("Info-ZIP's unzip is installed");
        let said = String::from_utf8_lossy(&unzip.stdout).into_owned();
        assert!(unzip.status.success(), "unzip -t: {said}");
        assert!(said.contains("No errors detected"), "unzip -t: {said}");
        let python = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import hashlib, sys, zipfile\n\
                 z = zipfile.ZipFile(sys.argv[1])\n\
                 assert z.testzip() is None\n\
                 for i in z.infolist():\n    \
                 print(i.filename, hashlib.sha256(z.read(i)).hexdigest())\n",
            )
            .arg(&path)
            .output()
            .expect("python3 is installed");
        assert!(
            python.status.success(),
            "python zipfile: {}",
            String::from_utf8_lossy(&python.stderr)
        );
        String::from_utf8_lossy(&python.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, sha)| (name.to_owned(), sha.to_owned()))
            .collect()
    }

    #[test]
    fn python_zipfile_and_unzip_read_what_is_written_with_and_without_zip64() {
        let big = sample(PIECE * 2 + 777);
        let small = b"ledger_index,time\n".to_vec();
        let want = vec![
            (
                "entries.jsonl".to_owned(),
                hex::encode(Sha256::digest(&big)),
            ),
            (
                "transitions.csv".to_owned(),
                hex::encode(Sha256::digest(&small)),
            ),
            ("empty.csv".to_owned(), hex::encode(Sha256::digest(b""))),
        ];
        for zip64_above in [None, Some(100)] {
            let zip = write_zip(
                &[
                    ("entries.jsonl", &big),
                    ("transitions.csv", &small),
                    ("empty.csv", b""),
                ],
                zip64_above,
            );
            assert_eq!(
                ordinary_tools_read(&zip),
                want,
                "ZIP64 above {zip64_above:?}"
            );
        }
    }

    #[test]
    fn dos_times_keep_two_seconds_and_clamp_before_1980() {
        let at = |y, mo, d, h, mi, s| {
            chrono::NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|d| d.and_hms_opt(h, mi, s))
                .expect("date")
        };
        assert_eq!(
            dos_time(at(2026, 12, 5, 21, 7, 33)),
            ((21 << 11) | (7 << 5) | 16, (46 << 9) | (12 << 5) | 5)
        );
        assert_eq!(dos_time(at(1970, 1, 1, 0, 0, 0)), (0, (1 << 5) | 1));
    }
}
