//! The directory's bytes never reach ldap3 unchecked. ldap3's BER decoder (lber) recurses once per nesting level
//! with no limit, so a hostile directory (an org owner may point a connection anywhere) could send a deeply nested
//! reply and overflow the stack of the whole server. Latchkey therefore does TCP, StartTLS and TLS itself, and
//! relays the plaintext LDAP through a socket pair to ldap3, passing on only whole messages of at most
//! `MAX_MESSAGE` bytes and `MAX_DEPTH` nesting levels, checked without recursion.
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest LDAP message accepted from a directory (an entry with its groups fits many times over).
pub const MAX_MESSAGE: usize = 1 << 20;
/// Deepest nesting accepted (real LDAP messages nest about 6 levels: message, op, attributes, values).
pub const MAX_DEPTH: usize = 32;

/// The tag, and where the content of the element at `pos` starts and ends (`None`: more bytes are needed).
fn header(buf: &[u8], pos: usize) -> Result<Option<(u8, usize, usize)>, String> {
    let Some(&tag) = buf.get(pos) else { return Ok(None) };
    let mut at = pos + 1;
    if tag & 0x1f == 0x1f {
        // High tag numbers: more tag bytes while the top bit is set (LDAP never uses them, but they are legal).
        loop {
            let Some(&b) = buf.get(at) else { return Ok(None) };
            at += 1;
            if at - pos > 5 {
                return Err("tag too long".into());
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let Some(&first) = buf.get(at) else { return Ok(None) };
    at += 1;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("indefinite or oversized length".into());
        }
        let Some(bytes) = buf.get(at..at + n) else { return Ok(None) };
        at += n;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize)
    };
    if len > MAX_MESSAGE {
        return Err(format!("element of {len} bytes"));
    }
    Ok(Some((tag, at, at + len)))
}

/// Checks the first complete message of `buf`: its length when whole and within the limits, `None` when more
/// bytes are needed, an error when it breaks a limit or is malformed.
pub fn check_message(buf: &[u8]) -> Result<Option<usize>, String> {
    let Some((tag, start, end)) = header(buf, 0)? else { return Ok(None) };
    if tag != 0x30 {
        return Err(format!("a message starts with tag {tag:#x}, not SEQUENCE"));
    }
    if buf.len() < end {
        return Ok(None);
    }
    // Walk every element with an explicit stack of the enclosing ends.
    let mut stack = vec![end];
    let mut pos = start;
    while let Some(&top) = stack.last() {
        if pos == top {
            stack.pop();
            continue;
        }
        let (tag, cstart, cend) = header(&buf[..top], pos)?.ok_or("an element runs past its parent")?;
        if cend > top {
            return Err("an element runs past its parent".into());
        }
        if tag & 0x20 != 0 {
            if stack.len() >= MAX_DEPTH {
                return Err(format!("nested deeper than {MAX_DEPTH} levels"));
            }
            stack.push(cend);
            pos = cstart;
        } else {
            pos = cend;
        }
    }
    Ok(Some(end))
}

/// Reads one checked message from `r` (bytes beyond it stay in `buf`).
async fn read_message<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        if let Some(n) = check_message(buf)? {
            return Ok(buf.drain(..n).collect());
        }
        let mut chunk = [0u8; 8192];
        let got = r.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if got == 0 {
            return Err("the directory closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// The StartTLS extended request (RFC 4511 §4.14.1), message id 1.
const STARTTLS: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

/// Asks for StartTLS and checks the answer is success (result code 0); returns bytes read past the answer.
pub async fn start_tls<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<(), String> {
    s.write_all(STARTTLS).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let msg = read_message(s, &mut buf).await?;
    if !buf.is_empty() {
        return Err("the directory sent data before TLS started".into());
    }
    // SEQUENCE { INTEGER id, [APPLICATION 24] { ENUMERATED resultCode, ... } }
    let (_, start, _) = header(&msg, 0)?.ok_or("short answer")?;
    let (_, _, id_end) = header(&msg, start)?.ok_or("short answer")?;
    let (op, op_start, _) = header(&msg, id_end)?.ok_or("short answer")?;
    let (rc_tag, rc_start, rc_end) = header(&msg, op_start)?.ok_or("short answer")?;
    if op != 0x78 || rc_tag != 0x0a || rc_end != rc_start + 1 {
        return Err("the answer to StartTLS is not an extended response".into());
    }
    match msg[rc_start] {
        0 => Ok(()),
        rc => Err(format!("the directory refused StartTLS (result code {rc})")),
    }
}

/// The TLS trust: the connection's CA when it has one, else the system's roots.
pub fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = match ca_pem {
        Some(pem) => super::pool::roots_from_pem(pem)?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Relays between ldap3 (`client`, plaintext over a socket pair) and the directory (`server`, TLS or plain):
/// requests as they are, answers one checked message at a time. Ends when either side closes or a message breaks
/// a limit (then both are closed and ldap3 reports a broken connection).
pub async fn relay<S: AsyncRead + AsyncWrite + Send + 'static>(server: S, client: tokio::net::UnixStream) {
    let (mut sr, mut sw) = tokio::io::split(server);
    let (mut cr, mut cw) = client.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut buf = Vec::new();
        loop {
            match read_message(&mut sr, &mut buf).await {
                Ok(msg) => {
                    if cw.write_all(&msg).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if !e.contains("closed the connection") {
                        tracing::warn!(reason = %e, "LDAP: a message from the directory was refused; connection closed");
                    }
                    return;
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_messages_pass_and_deep_or_huge_ones_do_not() {
        // A bind response: SEQUENCE { 1, [APPLICATION 1] { 0, "", "" } }.
        let bind_ok = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(check_message(bind_ok), Ok(Some(14)));
        assert_eq!(check_message(&bind_ok[..9]), Ok(None), "partial: wait for more");
        let mut two = bind_ok.to_vec();
        two.extend_from_slice(bind_ok);
        assert_eq!(check_message(&two), Ok(Some(14)), "one message at a time");
        // 40 levels of nested SEQUENCE.
        let mut deep = vec![0x05, 0x00];
        for _ in 0..40 {
            let mut outer = vec![0x30, 0x84];
            outer.extend_from_slice(&(deep.len() as u32).to_be_bytes());
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        assert!(check_message(&deep).unwrap_err().contains("nested deeper"));
        assert!(check_message(b"\x30\x84\x7f\xff\xff\xff").is_err(), "2 GB announced");
        assert!(check_message(b"\x30\x80\x00\x00").is_err(), "indefinite length");
        assert!(check_message(b"\x30\x03\x04\x05abc").is_err(), "an inner length past its parent");
        assert!(check_message(b"\x04\x00").is_err(), "not a SEQUENCE");
    }

    #[test]
    fn the_starttls_request_is_well_formed() {
        assert_eq!(check_message(STARTTLS), Ok(Some(STARTTLS.len())));
        assert_eq!(STARTTLS.len(), 31);
    }
}
