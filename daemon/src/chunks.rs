//! Bytes between a blocking thread (a bundle's or a tarball's writer or reader) and the async
//! side, in bounded channels: back-pressure both ways, constant memory.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes per chunk handed between the blocking side and the async side.
pub const CHUNK: usize = 1 << 20;

/// A `Write` on a blocking thread that sends what is written in chunks of up to [`CHUNK`] to
/// the async side (which applies back-pressure through the channel's bound).
pub struct ChunkWriter {
    sink: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    pub fn new(sink: mpsc::Sender<Bytes>) -> ChunkWriter {
        ChunkWriter {
            sink,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sink
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = buf.len().min(room);
        self.buffer.extend_from_slice(&buf[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A `Read` on a blocking thread over chunks the async side receives.
pub struct ChunkReader<T> {
    source: mpsc::Receiver<T>,
    current: Bytes,
}

impl<T: Into<Bytes>> ChunkReader<T> {
    pub fn new(source: mpsc::Receiver<T>) -> ChunkReader<T> {
        ChunkReader {
            source,
            current: Bytes::new(),
        }
    }
}

impl<T: Into<Bytes>> Read for ChunkReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.source.blocking_recv() {
                Some(chunk) => self.current = chunk.into(),
                None => return Ok(0),
            }
        }
        let taken = buf.len().min(self.current.len());
        buf[..taken].copy_from_slice(&self.current.split_to(taken));
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_every_byte_in_order() {
        let (sender, receiver) = mpsc::channel(4);
        let writer = std::thread::spawn(move || {
            let mut writer = ChunkWriter::new(sender);
            for n in 0..3_000u32 {
                writer.write_all(&n.to_le_bytes().repeat(200)).unwrap();
            }
            writer.flush().unwrap();
        });
        let mut read = Vec::new();
        ChunkReader::new(receiver).read_to_end(&mut read).unwrap();
        writer.join().unwrap();
        let expected: Vec<u8> = (0..3_000u32)
            .flat_map(|n| n.to_le_bytes().repeat(200))
            .collect();
        assert_eq!(read, expected);
    }
}
