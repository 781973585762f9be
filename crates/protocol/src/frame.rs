//! Length-prefixed frames: a big-endian `i32` size followed by that many bytes.
//!
//! Every frame is bounded before its body is read, so a hostile length
//! prefix can never make us allocate more than `max_frame_bytes`.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: i64, limit: usize },
    #[error("frame has a negative or zero length ({0})")]
    BadLength(i32),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly
/// between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut len = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        let n = reader.read(&mut len[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let size = i32::from_be_bytes(len);
    if size <= 0 {
        return Err(FrameError::BadLength(size));
    }
    if size as usize > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size: size as i64,
            limit: max_frame_bytes,
        });
    }
    // Read into uninitialised capacity (no zeroing of large produce
    // frames), never past this frame.
    let size = size as usize;
    let mut body = BytesMut::with_capacity(size);
    let mut frame = reader.take(size as u64);
    while body.len() < size {
        if frame.read_buf(&mut body).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(Some(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_and_rejects_bad_lengths() {
        let mut input: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 1, 9];
        let f = read_frame(&mut input, 10).await.unwrap().unwrap();
        assert_eq!(&f[..], &[1, 2, 3], "a frame never reads into the next one");
        let f = read_frame(&mut input, 10).await.unwrap().unwrap();
        assert_eq!(&f[..], &[9]);
        assert!(read_frame(&mut input, 10).await.unwrap().is_none());

        let mut big: &[u8] = &[0x7f, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut big, 1024).await,
            Err(FrameError::TooLarge { .. })
        ));
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut neg, 1024).await,
            Err(FrameError::BadLength(-1))
        ));
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(matches!(
            read_frame(&mut short, 1024).await,
            Err(FrameError::Truncated)
        ));
        let mut half_len: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame(&mut half_len, 1024).await,
            Err(FrameError::Truncated)
        ));
    }
}
