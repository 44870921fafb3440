use stomp_runtime::frame::Command;
use stomp_tests::{RawPeer, start_default};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pub_sub_round_trip() {
    let server = start_default().await;
    let mut sub = RawPeer::connect(server.tcp_addr).await;
    sub.handshake().await;
    sub.send("SUBSCRIBE\nid:0\ndestination:/topic/smoke\nreceipt:r1\n\n\0")
        .await;
    let r = sub.frame().await;
    assert_eq!(r.command, Command::Receipt);
    assert_eq!(r.get("receipt-id"), Some("r1"));
    let mut publ = RawPeer::connect(server.tcp_addr).await;
    publ.handshake().await;
    publ.send("SEND\ndestination:/topic/smoke\ncontent-type:text/plain\n\nhello\0")
        .await;
    let m = sub.frame().await;
    assert_eq!(m.command, Command::Message);
    assert_eq!(m.get("destination"), Some("/topic/smoke"));
    assert_eq!(m.get("subscription"), Some("0"));
    assert_eq!(&m.body[..], b"hello");
}
