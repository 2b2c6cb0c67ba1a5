//! A client generated from version 1.0 of the contract against a server
//! generated from 1.1, which added an optional property to the ack of
//! `add_note` and to the `note_added` event: the old client decodes both
//! (generated types ignore properties they do not know), while the server
//! still refuses unknown properties in what clients send.

use std::time::Duration;

use build_script_example::api::notes::client::{NotesClient, NotesServerEvent};
use build_script_example::api::{AddNote, AddNoteText};
use evcontract_runtime::client::{ClientError, ClientOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_0_client_reads_what_a_1_1_server_adds() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    );
    let server = tokio::spawn(build_script_example::serve_v1_1(listener));

    let client = NotesClient::connect(ClientOptions::new(url.clone()))
        .await
        .expect("connected");
    let mut events = client.events();
    let text = AddNoteText::try_from("hello".to_owned()).expect("valid text");
    // The ack carries `author`, which 1.0 does not know.
    let ack = client.add_note(AddNote { text }).await.expect("acked");
    assert_eq!(ack.id.get(), 1);
    // So does the event.
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("note_added in time")
        .expect("an event")
        .expect("decoded by the 1.0 client");
    match event {
        NotesServerEvent::NoteAdded(note) => {
            assert_eq!((note.id, note.text.as_str()), (1, "hello"));
        }
        other => panic!("expected note_added, got {other:?}"),
    }

    // Client payloads stay strict: an unknown property is refused by the
    // server's schema validation, with its path.
    let raw =
        evcontract_runtime::client::Client::connect(ClientOptions::new(url).namespace("/notes"))
            .await
            .expect("connected");
    let err = raw
        .emit_with_ack::<serde_json::Value, _>(
            "add_note",
            &serde_json::json!({ "text": "x", "mood": "happy" }),
        )
        .await
        .expect_err("refused");
    match err {
        ClientError::Server(e) => assert_eq!(e.code, "INVALID_PAYLOAD", "{e:?}"),
        other => panic!("expected INVALID_PAYLOAD, got {other:?}"),
    }
    server.abort();
}
