//! An import's records kept in an unnamed file until they become visible, so an import holds
//! a bounded amount of memory however many records its bundle carries. Each entry is a u32 LE
//! length, the 32-byte key and the record's stored form.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use cachestore::{CacheKey, Record};

pub struct Spool {
    file: BufWriter<File>,
}

impl Spool {
    /// An empty spool in `dir` (removed by the system when dropped: the file has no name).
    pub fn new(dir: &Path) -> io::Result<Spool> {
        Ok(Spool {
            file: BufWriter::new(tempfile::tempfile_in(dir)?),
        })
    }

    pub fn push(&mut self, record: &Record) -> io::Result<()> {
        let stored = record
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let length = u32::try_from(stored.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        self.file.write_all(&length.to_le_bytes())?;
        self.file.write_all(record.key.as_bytes())?;
        self.file.write_all(&stored)
    }

    /// The records pushed, in order.
    pub fn read(self) -> io::Result<SpoolReader> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(SpoolReader {
            file: BufReader::new(file),
        })
    }
}

pub struct SpoolReader {
    file: BufReader<File>,
}

impl SpoolReader {
    fn next_record(&mut self) -> io::Result<Option<Record>> {
        let mut length = [0u8; 4];
        match self.file.read_exact(&mut length) {
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            other => other?,
        }
        let mut key = [0u8; 32];
        self.file.read_exact(&mut key)?;
        let mut stored = vec![0u8; u32::from_le_bytes(length) as usize];
        self.file.read_exact(&mut stored)?;
        Record::decode(CacheKey::from_bytes(key), &stored)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl Iterator for SpoolReader {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path()).unwrap();
        let records: Vec<Record> = (0..3u8)
            .map(|n| Record {
                key: CacheKey::from_bytes([n; 32]),
                description: format!("step {n}"),
                payload: vec![n; 100 * usize::from(n)],
                ..Record::default()
            })
            .collect();
        for record in &records {
            spool.push(record).unwrap();
        }
        let read: Vec<Record> = spool.read().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, records);
    }
}
