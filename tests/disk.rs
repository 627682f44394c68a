//! Issue 12 item 4, disk, on real servers: `data_dir` on a small tmpfs. A
//! backup larger than the free space (with the sidecar's head room of
//! max(10 %, 256 MiB)) is refused before anything is downloaded; zip bombs (an
//! entry of 2 GiB of zeros, an entry claiming more than deflate can expand,
//! an entry inflating beyond its declared size) are refused with the disk as
//! free as before. Each job ends in error and leaves nothing. Needs root for
//! `mount`; where mounting is refused the tests say SKIPPED and pass.

mod common;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytesize::ByteSize;
use common::{Options, Stage, Tmpfs, BUCKET, TOKEN};
use numikube_staging_rpc::{JobState, StagingApiClient};

/// Whether this process may mount a tmpfs (root, or CAP_SYS_ADMIN); says SKIPPED when not.
fn can_mount(test: &str) -> bool {
    let probe = tempfile::tempdir().unwrap();
    match Tmpfs::mount(probe.path(), "1m") {
        Ok(_mounted) => true,
        Err(e) => {
            println!("SKIPPED {test}: {e}");
            false
        }
    }
}

/// Whether a file system is mounted on `path`.
fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts.lines().any(|l| l.split_whitespace().nth(1) == Some(path.to_str().unwrap()))
}

#[test]
fn the_tmpfs_is_unmounted_even_when_the_test_panics() {
    if !can_mount("the_tmpfs_is_unmounted_even_when_the_test_panics") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let inner = path.clone();
    let panicked = std::thread::spawn(move || {
        let _tmpfs = Tmpfs::mount(&inner, "1m").unwrap();
        assert!(is_mounted(&inner));
        panic!("a failing test (on purpose)");
    })
    .join();
    assert!(panicked.is_err());
    assert!(!is_mounted(&path), "{} is still mounted", path.display());
}

/// Free bytes of the file system holding `path` (`statvfs`'s `f_bavail × f_frsize`).
fn free_bytes(path: &Path) -> u64 {
    numikube_staging::copy::restore::spool::free_bytes(path).unwrap_or_else(|| panic!("statvfs {}", path.display()))
}

/// The least head room the disk checks keep free: max(10 %, 256 MiB).
const HEAD_ROOM: u64 = 256 << 20;

/// Where the sidecar spools downloads (`<data_dir>/numikube_staging/spool`).
fn spool_dir(stage: &Stage) -> PathBuf {
    stage.data_dir().join("numikube_staging").join("spool")
}

/// Files in the spool directory.
fn spooled(stage: &Stage) -> Vec<String> {
    std::fs::read_dir(spool_dir(stage)).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// Deterministic incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

// ---------------------------------------------------------------------------
// Zip bombs, made without ever holding (or compressing) what they expand to
// ---------------------------------------------------------------------------

/// Bits written least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    /// `value`'s `count` low bits, least significant first (header fields, extra bits).
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, its most significant bit first.
    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0, |r, i| r | (((code >> i) & 1) << (len - 1 - i)));
        self.put(reversed, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A raw deflate stream that inflates to `n` (≥ 1) zero bytes: one dynamic
/// Huffman block where a literal 0 costs 2 bits and each further run of 258
/// zeros (length 258, distance 1) 2 bits, the best deflate can do (~1032:1).
fn deflate_zeros(n: u64) -> Vec<u8> {
    assert!(n >= 1);
    let mut b = Bits::default();
    b.put(1, 1); // BFINAL
    b.put(2, 2); // BTYPE: dynamic Huffman
    b.put(286 - 257, 5); // HLIT: literal/length codes 0..=285
    b.put(0, 5); // HDIST: one distance code
    b.put(18 - 4, 4); // HCLEN: code length codes up to the one for length 1
                      // Code length code: symbols 0, 1, 2 and 18, two bits each (00, 01, 10, 11).
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        b.put(if matches!(sym, 0 | 1 | 2 | 18) { 2 } else { 0 }, 3);
    }
    let zeros = |b: &mut Bits, mut count: u64| {
        while count > 0 {
            let run = count.min(138);
            assert!(run >= 11);
            b.code(0b11, 2); // 18: a run of 11..=138 zero lengths
            b.put(run - 11, 7);
            count -= run;
        }
    };
    // Literal/length lengths: 0 → 2, 1..=255 → 0, 256 → 2, 257..=284 → 0, 285 → 1; distance 0 → 1.
    b.code(0b10, 2);
    zeros(&mut b, 255);
    b.code(0b10, 2);
    zeros(&mut b, 28);
    b.code(0b01, 2);
    b.code(0b01, 2);
    // Canonical codes: 285 → 0; literal 0 → 10; end of block 256 → 11; distance 0 → 0.
    b.code(0b10, 2);
    let (runs, rest) = ((n - 1) / 258, (n - 1) % 258);
    for _ in 0..runs {
        b.code(0, 1); // length 258
        b.code(0, 1); // distance 1
    }
    for _ in 0..rest {
        b.code(0b10, 2);
    }
    b.code(0b11, 2);
    b.finish()
}

/// The CRC-32 of `n` zero bytes, without reading them: the register's change
/// by one zero byte is linear, raised to the `n`th power by squaring.
fn crc32_of_zeros(n: u64) -> u32 {
    fn apply(m: &[u32; 32], v: u32) -> u32 {
        (0..32).filter(|i| v >> i & 1 == 1).fold(0, |acc, i| acc ^ m[i])
    }
    let mut op = [0u32; 32];
    for (i, col) in op.iter_mut().enumerate() {
        let mut c = 1u32 << i;
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
        *col = c;
    }
    let (mut v, mut k) = (!0u32, n);
    while k > 0 {
        if k & 1 == 1 {
            v = apply(&op, v);
        }
        let sq: Vec<u32> = op.iter().map(|&col| apply(&op, col)).collect();
        op.copy_from_slice(&sq);
        k >>= 1;
    }
    !v
}

/// A zip of one deflated entry `name` whose data is `data`, declaring
/// `declared` bytes with CRC `crc` in its local header and central directory.
fn one_entry_zip(name: &str, data: &[u8], declared: u32, crc: u32) -> Vec<u8> {
    let mut z = Vec::new();
    let common = |z: &mut Vec<u8>| {
        z.extend_from_slice(&20u16.to_le_bytes()); // version needed
        z.extend_from_slice(&0u16.to_le_bytes()); // flags
        z.extend_from_slice(&8u16.to_le_bytes()); // deflate
        z.extend_from_slice(&0u16.to_le_bytes()); // time
        z.extend_from_slice(&0x5b78u16.to_le_bytes()); // date: 2025-11-24
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&declared.to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes()); // extra field
    };
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    common(&mut z);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let cd = z.len() as u32;
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&0x031eu16.to_le_bytes()); // made by: unix, 3.0
    common(&mut z);
    z.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
    z.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
    z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    z.extend_from_slice(name.as_bytes());
    let cd_len = z.len() as u32 - cd;
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

/// `content` deflated by the zip crate as the one entry `name` of a zip, then
/// both its headers (local and central) patched to declare `declared` bytes.
fn lying_entry_zip(name: &str, content: &[u8], declared: u32) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file(name, opts).unwrap();
    writer.write_all(content).unwrap();
    let mut z = writer.finish().unwrap().into_inner();
    assert_eq!(z[..4], 0x0403_4b50u32.to_le_bytes(), "a local header first");
    z[22..26].copy_from_slice(&declared.to_le_bytes());
    let cd = z.windows(4).rposition(|w| w == 0x0201_4b50u32.to_le_bytes()).expect("a central directory header");
    z[cd + 24..cd + 28].copy_from_slice(&declared.to_le_bytes());
    z
}

/// The fixture's Odoo zip `src` with more entries: `extra` zips' entries copied
/// as they are (never inflated; one named like an entry of `src` replaces it),
/// and `stored` files written uncompressed.
fn odoo_zip_with(src: &Path, out: &Path, extra: &[Vec<u8>], stored: &[(&str, Vec<u8>)]) {
    let mut writer = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let replaced: Vec<String> =
        extra.iter().map(|z| zip::ZipArchive::new(Cursor::new(z.as_slice())).unwrap().name_for_index(0).unwrap().to_string()).collect();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).unwrap();
        if !replaced.iter().any(|r| r == entry.name()) {
            writer.raw_copy_file(entry).unwrap();
        }
    }
    for zip in extra {
        let mut archive = zip::ZipArchive::new(Cursor::new(zip.as_slice())).unwrap();
        writer.raw_copy_file(archive.by_index_raw(0).unwrap()).unwrap();
    }
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in stored {
        writer.start_file(*name, opts).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn the_handmade_deflate_stream_and_crc_are_what_zip_readers_expect() {
    for n in [1u64, 2, 258, 259, 260, 1000, 100_000] {
        let zip = one_entry_zip("zeros", &deflate_zeros(n), n as u32, crc32_of_zeros(n));
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        let mut content = Vec::new();
        // Reading to the end checks the CRC.
        archive.by_index(0).unwrap().read_to_end(&mut content).unwrap_or_else(|e| panic!("{n} zeros: {e}"));
        assert_eq!(content.len() as u64, n);
        assert!(content.iter().all(|&b| b == 0));
    }
    // 2 GiB of zeros in about 2 MB: deflate's best ratio.
    let bomb = deflate_zeros(1 << 31);
    assert!(bomb.len() < (1 << 31) / 1000, "{} bytes", bomb.len());
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// What [`failing_job`] saw.
struct Failed {
    error: String,
    /// The lowest free space of `data_dir` while the job ran.
    lowest: u64,
    /// Whether a spool file was ever seen.
    spooled: bool,
    db_name: String,
}

/// Runs a prod2x of `client`, expects it to fail, and returns its error; while
/// it runs, watches the free space of `data_dir` and the spool directory.
async fn failing_job(stage: &Stage, client: &str) -> Failed {
    let started = stage.run(stage.prod2x(client, "t", false)).await.expect("accepted");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut lowest, mut seen) = (u64::MAX, false);
    let status = loop {
        lowest = lowest.min(free_bytes(&stage.data_dir()));
        seen |= !spooled(stage).is_empty();
        let status = stage.client.status(TOKEN.into(), started.job_id.clone()).await.expect("status answers");
        if status.state != JobState::Running {
            break status;
        }
        assert!(Instant::now() < deadline, "still running: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status.state, JobState::Error, "{client}: {status:?}\n{}", stage.sidecar_log());
    Failed { error: status.error.unwrap_or_default(), lowest, spooled: seen, db_name: started.db_name }
}

/// Nothing of a failed job is left: no database, no filestore, no spool file.
fn assert_nothing_left(stage: &Stage, db_name: &str) {
    stage.wait_no_leftovers(Duration::from_secs(10));
    assert!(stage.leftovers().is_empty(), "{:?}", stage.leftovers());
    assert!(!stage.databases().iter().any(|d| d == db_name), "{db_name} exists");
    assert!(!stage.data_dir().join("filestore").join(db_name).exists());
    assert!(spooled(stage).is_empty(), "spool files left: {:?}", spooled(stage));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_larger_than_the_free_space_is_refused_before_downloading() {
    if !can_mount("a_backup_larger_than_the_free_space_is_refused_before_downloading") {
        return;
    }
    let stage = Stage::start(Options { data_tmpfs: Some("64m".into()), ..Options::default() });
    let data = stage.data_dir();
    let free = free_bytes(&data);
    assert!(free <= 64 << 20, "data_dir is not on the 64 MiB tmpfs: {free} free");
    // A real Odoo zip with an 80 MiB (incompressible, stored) attachment: more than the disk holds.
    let (work, _) = stage.make_backups("big");
    let big = work.join("big-large.zip");
    odoo_zip_with(&Stage::backup_path(&work, "big", "zip"), &big, &[], &[("filestore/ff/big", noise(80 << 20, 7))]);
    let size = std::fs::metadata(&big).unwrap().len();
    stage.s3.put_file(BUCKET, "big.zip", &big).unwrap();

    let Failed { error, lowest, spooled, db_name: db } = failing_job(&stage, "big").await;
    assert!(!spooled, "a spool file appeared");
    let needed = size + (size / 10).max(256 << 20);
    let spool = spool_dir(&stage);
    assert!(
        error.contains("not enough free disk")
            && error.contains(&spool.display().to_string())
            && error.contains(&ByteSize(needed).to_string()),
        "the error does not say that {} were needed in {}: {error}",
        ByteSize(needed),
        spool.display()
    );
    // Refused before downloading: the free space never went down by more than a few pages.
    assert!(free - lowest.min(free) < 64 << 10, "{} written while refusing", ByteSize(free - lowest));
    assert_nothing_left(&stage, &db);
    assert!(free_bytes(&data).abs_diff(free) < 64 << 10, "free before {free}, after {}", free_bytes(&data));
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_bombs_and_a_filestore_larger_than_the_disk_are_refused_with_the_disk_as_free_as_before() {
    if !can_mount("zip_bombs_and_a_filestore_larger_than_the_disk_are_refused_with_the_disk_as_free_as_before") {
        return;
    }
    // Larger than 64 MiB: the spool check keeps max(10 %, 256 MiB) free, so a
    // smaller tmpfs would refuse every zip before it is even downloaded.
    let stage = Stage::start(Options { data_tmpfs: Some("272m".into()), ..Options::default() });
    let data = stage.data_dir();
    let (work, _) = stage.make_backups("bomb");
    let fixture_zip = Stage::backup_path(&work, "bomb", "zip");
    let gib2 = 1u64 << 31;
    let noise = noise(12 << 20, 3);
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        // 2 GiB of zeros in ~2 MB, honestly declared: expands to far more than 200 times the zip.
        (
            "bomb0",
            {
                let zeros = one_entry_zip("filestore/00/zeros", &deflate_zeros(gib2), gib2 as u32, crc32_of_zeros(gib2));
                let p = work.join("bomb0.zip");
                odoo_zip_with(&fixture_zip, &p, &[zeros], &[]);
                p
            },
            "zip bomb",
        ),
        // An entry claiming 1 GiB from 1 KiB (beyond deflate's 1032:1), in a zip
        // large enough (12 MiB of stored noise) for the whole to stay under 200:1.
        (
            "bomb1",
            {
                let claim = one_entry_zip("filestore/01/claim", &deflate_zeros(1 << 20), 1 << 30, crc32_of_zeros(1 << 30));
                let p = work.join("bomb1.zip");
                odoo_zip_with(&fixture_zip, &p, &[claim], &[("filestore/02/noise", noise.clone())]);
                p
            },
            "claims",
        ),
        // An entry whose headers say 1000 bytes, inflating to 16 MiB.
        (
            "bomb2",
            {
                let lie = one_entry_zip("filestore/03/lie", &deflate_zeros(16 << 20), 1000, crc32_of_zeros(1000));
                let p = work.join("bomb2.zip");
                odoo_zip_with(&fixture_zip, &p, &[lie], &[]);
                p
            },
            "beyond its declared",
        ),
        // dump.sql (the fixture's real one) declaring half its size.
        (
            "bomb3",
            {
                let mut archive = zip::ZipArchive::new(std::fs::File::open(&fixture_zip).unwrap()).unwrap();
                let mut sql = Vec::new();
                archive.by_name("dump.sql").unwrap().read_to_end(&mut sql).unwrap();
                let lie = lying_entry_zip("dump.sql", &sql, sql.len() as u32 / 2);
                let p = work.join("bomb3.zip");
                odoo_zip_with(&fixture_zip, &p, &[lie], &[]);
                p
            },
            "beyond the size the zip declares",
        ),
        // No bomb: a 12 MiB attachment fits the spool check (12 MiB + 256 MiB of
        // 272 MiB) but, with the spooled zip on the same disk, not the filestore's.
        (
            "room",
            {
                let p = work.join("room.zip");
                odoo_zip_with(&fixture_zip, &p, &[], &[("filestore/04/big", noise.clone())]);
                p
            },
            "not enough free disk for the backup's filestore",
        ),
    ];
    for (client, path, why) in &cases {
        stage.s3.put_file(BUCKET, &format!("{client}.zip"), path).unwrap();
        let free = free_bytes(&data);
        let Failed { error, lowest, db_name: db, .. } = failing_job(&stage, client).await;
        assert!(error.contains(why), "{client}: not refused for {why:?}: {error}");
        let zip_bytes = std::fs::metadata(path).unwrap().len();
        // The spool holds the zip for a moment; nothing it expands to is written.
        assert!(free - lowest.min(free) < zip_bytes + (1 << 20), "{client}: {} written", ByteSize(free - lowest));
        assert_nothing_left(&stage, &db);
        let after = free_bytes(&data);
        assert!(after.abs_diff(free) < 64 << 10, "{client}: free before {free}, after {after}");
        println!("{client}: {} zip refused: {error}", ByteSize(zip_bytes));
    }
}

/// A gzip'ed plain SQL backup of `lines` COPY rows (`0`), compressed by `gzip -1`
/// from a pipe: hundreds of MB of SQL in a file of a few hundred KB, never on disk.
fn gzip_bomb_sql(out: &Path, lines: usize) {
    use std::process::{Command, Stdio};
    let mut gzip =
        Command::new("gzip").args(["-c", "-1", "-n"]).stdin(Stdio::piped()).stdout(std::fs::File::create(out).unwrap()).spawn().unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    stdin.write_all(b"SET statement_timeout = 0;\nCREATE TABLE public.bomb (n integer);\nCOPY public.bomb (n) FROM stdin;\n").unwrap();
    let chunk = b"0\n".repeat(1 << 19);
    for _ in 0..lines / (1 << 19) {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.write_all(b"\\.\n").unwrap();
    drop(stdin);
    assert!(gzip.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_of_plain_sql_never_fills_the_disk() {
    if !can_mount("a_gzip_bomb_of_plain_sql_never_fills_the_disk") {
        return;
    }
    // Loaded in parallel, plain SQL is decompressed to a spool file in data_dir first.
    let stage = Stage::start(Options {
        data_tmpfs: Some("272m".into()),
        extra_conf: "numikube_staging_restore_jobs = 2\n".into(),
        ..Options::default()
    });
    let data = stage.data_dir();
    let path = stage.dir.path().join("bomb.sql.gz");
    gzip_bomb_sql(&path, 200 << 20); // 400 MiB of SQL: more than the whole tmpfs
    let size = std::fs::metadata(&path).unwrap().len();
    stage.s3.put_file(BUCKET, "gzbomb.sql.gz", &path).unwrap();
    let free = free_bytes(&data);
    let started = stage.run(stage.prod2x("gzbomb", "t", false)).await.expect("accepted");
    let (begun, mut lowest) = (Instant::now(), u64::MAX);
    let status = loop {
        lowest = lowest.min(free_bytes(&data));
        let status = stage.client.status(TOKEN.into(), started.job_id.clone()).await.expect("status answers");
        if status.state != JobState::Running || lowest < HEAD_ROOM - (1 << 20) || begun.elapsed() > Duration::from_secs(60) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("after {:?}: lowest free {} of {}: {status:?}", begun.elapsed(), ByteSize(lowest), ByteSize(free));
    if status.state == JobState::Running {
        let cancelling = Instant::now();
        let _ = stage.client.cancel(TOKEN.into(), started.job_id.clone()).await;
        let cancelled = stage.wait_job(&started.job_id).await;
        println!("cancelled in {:?}: {cancelled:?}", cancelling.elapsed());
    }
    // The head room the spool check keeps free (max(10 %, 256 MiB) of what it
    // lets in) is never eaten, let alone the disk filled.
    assert!(
        lowest >= HEAD_ROOM - (1 << 20),
        "data_dir went down to {} free of {} while spooling a {} gzip (the check let in {} with {} of head room)",
        ByteSize(lowest),
        ByteSize(free),
        ByteSize(size),
        ByteSize(size * 8),
        ByteSize(HEAD_ROOM)
    );
    assert_eq!(status.state, JobState::Error, "{status:?}");
    let db_name = started.db_name;
    assert_nothing_left(&stage, &db_name);
    assert!(free_bytes(&data).abs_diff(free) < 64 << 10);
}
