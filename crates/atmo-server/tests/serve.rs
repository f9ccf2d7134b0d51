//! `Server::serve` on a real socket: answers, and a shutdown ends open event streams so the
//! graceful shutdown completes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{config, engine};

async fn get(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.unwrap();
    s
}

async fn read_some(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_and_shuts_down_gracefully_with_streams_open() {
    let manager = engine().await;
    let server = atmo_server::Server::new(manager.clone(), config()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.clone().serve(listener, async move {
        let _ = stopped.await;
    }));

    let mut health = get(addr, "/healthz").await;
    let text = read_some(&mut health).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    let mut events = get(addr, "/v1/events").await;
    let head = read_some(&mut events).await;
    assert!(head.contains("text/event-stream"), "{head}");

    stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), serving).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "serve returns once the stream ended: {done:?}");
    assert!(!server.is_ready());
    manager.shutdown(Duration::from_millis(200)).await.unwrap();
}
