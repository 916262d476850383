//! Below the floor: a Lambda runtime loop on the standard library alone (one kept-alive
//! HTTP/1.1 connection to the Runtime API, no async runtime, no JSON parsing). It answers every
//! event with its own bytes. What is left is the cost of the Runtime API exchange itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn main() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| std::io::Error::other("AWS_LAMBDA_RUNTIME_API is not set"))?;
    let stream = TcpStream::connect(&api)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let next = format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
    let mut out = Vec::new();
    loop {
        writer.write_all(next.as_bytes())?;
        let (headers, body) = read_response(&mut reader)?;
        let id = headers
            .iter()
            .find_map(|(k, v)| {
                k.eq_ignore_ascii_case("lambda-runtime-aws-request-id")
                    .then_some(v.clone())
            })
            .ok_or_else(|| std::io::Error::other("no request id"))?;
        // One write per request: the head and the body together.
        out.clear();
        write!(
            out,
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        out.extend_from_slice(&body);
        writer.write_all(&out)?;
        read_response(&mut reader)?;
    }
}

type Headers = Vec<(String, String)>;

fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(Headers, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?; // status line
    if line.is_empty() {
        return Err(std::io::Error::other("the Runtime API closed the connection"));
    }
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().map_err(|_| std::io::Error::other("bad content-length"))?;
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok((headers, body))
}
