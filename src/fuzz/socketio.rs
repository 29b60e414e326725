//! Socket.IO packets, attachments included (`protocol::socketio`).
//!
//! The input is read as a packet: its head written again by the encoder decodes to the same
//! packet; the last string argument (the recovery offset) is what serde_json reads as the last
//! element of the arguments. Then a binary event drawn from the input, with its attachments,
//! crosses a long-polling body of either Engine.IO version and comes back whole.

use serde_json::Value;

use super::engineio::is_within;
use super::unstructured::Unstructured;
use crate::protocol::engineio::{self, Packet as EioPacket, PacketType, Version};
use crate::protocol::socketio::{self, Kind, Packet};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(packet) = socketio::decode(&text) {
        check_decoded(&text, &packet);
    }
    check_last_string_arg(&text);
    // Only that they answer: what a server sends in a CONNECT reply or error is its business.
    let _ = socketio::ConnectReply::parse(&text);
    let _ = socketio::connect_error_message(&text);
    check_attachments_cross_polling(data);
}

fn check_decoded(text: &str, packet: &Packet) {
    assert!(packet.namespace.starts_with('/'), "namespace of {text:?}");
    assert!(
        is_within(packet.data, text) && text.ends_with(packet.data),
        "data of {text:?}"
    );
    assert!(
        packet.attachments == 0 || matches!(packet.kind, Kind::BinaryEvent | Kind::BinaryAck),
        "attachments on {text:?}"
    );
    // Data that starts with `/` right after the type reads as a namespace: the encoder, like
    // socket.io-parser's, relies on the JSON that always follows never starting so.
    let ambiguous = packet.namespace == "/" && packet.id.is_none() && packet.data.starts_with('/');
    if ambiguous {
        return;
    }
    let mut again = String::new();
    socketio::write_head(
        &mut again,
        packet.kind,
        packet.attachments,
        packet.namespace,
        packet.id,
    );
    again.push_str(packet.data);
    assert_eq!(
        socketio::decode(&again).as_ref(),
        Ok(packet),
        "{text:?} decoded, written as {again:?} and decoded again"
    );
}

/// Agreement with serde_json on the last element of an argument array.
fn check_last_string_arg(text: &str) {
    let found = socketio::last_string_arg(text);
    if let Some(found) = found {
        assert!(is_within(found, text), "{found:?} is not part of {text:?}");
    }
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match (items.last(), found) {
        (Some(Value::String(last)), Some(found)) => {
            let unescaped: Option<String> = serde_json::from_str(&format!("\"{found}\"")).ok();
            assert_eq!(
                unescaped.as_ref(),
                Some(last),
                "the last string argument of {text:?}"
            );
        }
        (Some(Value::String(last)), None) => {
            panic!("{text:?} ends with the string {last:?}, not found")
        }
        (_, Some(found)) => panic!("{text:?} does not end with a string, but {found:?} was found"),
        (_, None) => {}
    }
}

/// A binary event or ack with attachments drawn from the input, over long-polling.
fn check_attachments_cross_polling(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let kind = if u.bool() {
        Kind::BinaryEvent
    } else {
        Kind::BinaryAck
    };
    let namespace = ["/", "/admin", "/a-b"][u.below(3)];
    let id = u
        .bool()
        .then(|| u64::from(u.byte()) << 32 | u64::from(u.byte()));
    let count = u.below(4);
    let mut attachments: Vec<&[u8]> = (0..count)
        .map(|_| {
            let len = usize::from(u.byte() % 16);
            u.take(len)
        })
        .collect();
    let rest = u.rest();
    attachments.push(rest);
    let count = attachments.len() as u32;
    let mut packet = String::new();
    socketio::write_head(&mut packet, kind, count, namespace, id);
    packet.push_str("[\"up\"");
    for num in 0..count {
        packet.push(',');
        socketio::push_placeholder(&mut packet, num);
    }
    packet.push(']');
    for version in [Version::V3, Version::V4] {
        let mut body = String::new();
        engineio::push_payload_text(version, &mut body, &format!("4{packet}"));
        for attachment in &attachments {
            engineio::push_payload_binary(version, &mut body, attachment);
        }
        let packets = engineio::split_payload(version, &body).expect("the encoder's own body");
        assert_eq!(
            packets.len(),
            attachments.len() + 1,
            "{version:?}: packets in {body:?}"
        );
        let Ok(EioPacket::Text(PacketType::Message, head)) =
            engineio::decode_text(version, packets[0])
        else {
            panic!("{version:?}: {:?} is not a message", packets[0]);
        };
        let decoded = socketio::decode(head).expect("an encoded packet decodes");
        assert_eq!(
            (
                decoded.kind,
                decoded.attachments,
                decoded.namespace,
                decoded.id
            ),
            (kind, count, namespace, id),
            "{version:?}: {head:?}"
        );
        let args: Value = serde_json::from_str(decoded.data).expect("the arguments are JSON");
        let placeholders = args.as_array().map_or(0, |a| {
            a.iter().filter(|v| v["_placeholder"] == true).count()
        });
        assert_eq!(
            placeholders, count as usize,
            "placeholders in {:?}",
            decoded.data
        );
        for (packet, attachment) in packets[1..].iter().zip(&attachments) {
            assert_eq!(
                engineio::decode_text(version, packet),
                Ok(EioPacket::Binary(attachment.to_vec())),
                "{version:?}: an attachment"
            );
        }
    }
}
