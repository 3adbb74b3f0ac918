//! A one-request tool service, the second process of the propagation test:
//! it installs observra from the environment (`OTEL_*`), prints the address
//! it listens on, answers one HTTP request inside the caller's trace, and
//! exits after flushing.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

#[observra::tool_call(name = "lookup_order")]
fn lookup_order(id: &str) -> String {
    format!("order {id}: shipped")
}

#[observra::traced(kind = server, name = "POST /tools/lookup_order")]
fn handle(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut headers = http::HeaderMap::new();
    let mut line = String::new();
    reader.read_line(&mut line)?; // request line
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            if let (Ok(k), Ok(v)) =
                (http::HeaderName::from_bytes(k.trim().as_bytes()), http::HeaderValue::from_str(v.trim()))
            {
                headers.append(k, v);
            }
        }
    }
    // Join the caller's trace before any other span opens.
    observra::propagation::set_remote_parent(observra::current_span(), &headers);
    let body = lookup_order("A-1001");
    let mut stream = stream;
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = observra::init().service_name("tool-service").install()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let (stream, _) = listener.accept()?;
    handle(stream)?;
    drop(telemetry);
    Ok(())
}
