//! NumPy `.npy` files of 2-D little-endian `float32` arrays (as `numpy.save` writes them).

use crate::{Error, Result};
use std::path::Path;

/// Reads a C-ordered 2-D `<f4` array: (values row-major, rows, cols).
pub fn read_f32_matrix(path: impl AsRef<Path>) -> Result<(Vec<f32>, usize, usize)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: &str| Error::parse(path, None, format!("not a 2-D float32 .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated header"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad(&format!("dtype is not '<f4' ({})", header.trim())));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran order is not supported"));
    }
    let shape = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else { return Err(bad(&format!("{}-D array", dims.len()))) };
    let data = &bytes[start + header_len..];
    if data.len() != rows * cols * 4 {
        return Err(bad(&format!("{} data bytes for a {rows}×{cols} array", data.len())));
    }
    Ok((data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(), rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_numpy_writes_and_rejects_the_rest() {
        let dir = std::env::temp_dir().join(format!("towers-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // numpy.save(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)), header padded to 64 bytes
        let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for x in [1f32, 2., 3., 4., 5., 6.] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let p = dir.join("a.npy");
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_f32_matrix(&p).unwrap(), (vec![1., 2., 3., 4., 5., 6.], 2, 3));
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        assert!(read_f32_matrix(&p).unwrap_err().to_string().contains("a.npy"));
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_f32_matrix(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
