//! Length-prefixed frames: `u32` big-endian length, then that many bytes of postcard.

use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frames larger than this close the connection: a screen of 1000x1000 cells fits well below it.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = postcard::to_stdvec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    // A message must use the whole frame: trailing bytes mean the peer speaks something else.
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(postcard::Error::DeserializeBadEncoding));
    }
    Ok(msg)
}

pub async fn read_frame<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Closed
        } else {
            FrameError::Io(e)
        }
    })?;
    decode(&body)
}

pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let bytes = encode(msg)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::*;
    use crate::term::screen::{ScreenUpdate, attr};
    use crate::term::{Cell, Color, Modes, Size};

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(msg: T) {
        let bytes = encode(&msg).unwrap();
        assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        let back: T = decode(&bytes[4..]).unwrap();
        assert_eq!(back, msg);
    }

    fn target() -> Target {
        Target { repo: "/tmp/r".into(), name: "a-1".into() }
    }

    #[test]
    fn every_client_message_round_trips() {
        round_trip(ClientMsg::Hello { version: PROTOCOL_VERSION, client: "0.1.0".into() });
        round_trip(ClientMsg::Input(b"\x1b[A\xff\x00".to_vec()));
        round_trip(ClientMsg::Resize(Size::new(80, 24)));
        round_trip(ClientMsg::Detach);
        let reqs = vec![
            Request::Ping,
            Request::New(NewAgent {
                repo: "/r".into(),
                prompt: Some("fix the bug\nplease ✓".into()),
                profile: Some("shell".into()),
                name: None,
                base: Some("main".into()),
                count: 3,
                size: Some(Size::new(100, 30)),
                env: vec![("HOME".into(), "/h".into())],
                worktree: Some("/w/x".into()),
                colors: Some(crate::term::TermColors::FALLBACK),
                args: vec!["--model".into(), "a b".into()],
            }),
            Request::List { repo: None },
            Request::Tail { target: target(), lines: 10 },
            Request::Follow { target: target(), lines: 0, ansi: true, from: Some(7) },
            Request::Send { target: target(), text: "echo $PORT".into(), enter: true },
            Request::Attach { target: target(), size: None, tty: None, colors: None, keys: None },
            Request::Attach {
                target: target(),
                size: None,
                tty: Some("/dev/pts/3".into()),
                colors: Some(crate::term::TermColors::FALLBACK),
                keys: Some(crate::proto::KeyReading {
                    detach: 0x1d,
                    kitty: b"\x1b[93;5u".to_vec(),
                }),
            },
            Request::Stop { target: target() },
            Request::Restart { target: target(), env: vec![] },
            Request::Remove {
                target: target(),
                force: true,
                git_env: vec![("EMAIL".into(), "me@example.invalid".into())],
            },
            Request::Gc { repo: "/r".into(), remove: true, force: false, git_env: vec![] },
            Request::KillServer,
        ];
        for r in reqs {
            round_trip(ClientMsg::Request(r));
        }
    }

    #[test]
    fn every_server_message_round_trips() {
        let cell = Cell {
            ch: '界',
            extra: Some("\u{301}".into()),
            fg: Color::Rgb(1, 2, 3),
            bg: Color::Indexed(200),
            attrs: attr::BOLD | attr::WIDE,
            link: Some("https://example.invalid".into()),
        };
        let line = Line { cells: vec![cell, Cell::default()], wrapped: true };
        round_trip(ServerMsg::Hello { version: PROTOCOL_VERSION, server: "x".into(), pid: 7 });
        round_trip(ServerMsg::Screen(ScreenUpdate {
            size: Size::new(2, 1),
            full: true,
            rows: vec![(0, line.clone())],
            cursor: (0, 1),
            modes: Modes { bracketed_paste: true, kitty_flags: 3, ..Modes::default() },
            title: "t".into(),
        }));
        round_trip(ServerMsg::Text("row\n\x1b[1mbold\x1b[0m\n".into()));
        round_trip(ServerMsg::Reply(Reply::Lines(vec![line])));
        round_trip(ServerMsg::Bell);
        round_trip(ServerMsg::Detached);
        round_trip(ServerMsg::Exited(Some(3)));
        round_trip(ServerMsg::Reply(Reply::Error("no agent 'x'".into())));
        round_trip(ServerMsg::Reply(Reply::Agents(vec![AgentInfo {
            name: "a".into(),
            repo: "/r".into(),
            profile: "shell".into(),
            status: "idle".into(),
            status_since: 1,
            status_reason: "activity".into(),
            branch: "corral/a".into(),
            base: "main".into(),
            base_commit: "abc".into(),
            worktree: "/w".into(),
            pid: Some(9),
            exit_code: None,
            port: Some(4100),
            size: Size::DEFAULT,
            created: 2,
            prompt: None,
            queued: 0,
            diff: Some(DiffStat { files: 1, insertions: 2, deletions: 3, ahead: 4, behind: 5 }),
            conflicts: vec![ConflictInfo {
                with: "b".into(),
                base: false,
                paths: vec!["x".into()],
            }],
            landing: Some(Landing {
                position: Some(2),
                state: "waiting".into(),
                reason: None,
                gate_log: Some("/s/g.log".into()),
            }),
            args: vec!["--model".into(), "x".into()],
            group: Some("fix".into()),
        }])));
        round_trip(ServerMsg::Reply(Reply::Landing(vec![LandingEntry {
            name: "a".into(),
            position: None,
            state: "blocked".into(),
            reason: Some("gate `make` failed with exit code 2".into()),
            failure: Some("gate".into()),
            told: Some("fix it".into()),
            gate_log: Some("/s/a.log".into()),
            landed_at: None,
            retries: 1,
        }])));
        round_trip(ClientMsg::Request(Request::Land {
            repo: "/r".into(),
            names: vec!["a".into(), "b".into()],
            mode: MergeMode::Squash,
            keep: false,
            git_env: vec![],
        }));
        round_trip(ClientMsg::Request(Request::LandCancel {
            target: Target { repo: "/r".into(), name: "a".into() },
        }));
        round_trip(ClientMsg::Request(Request::Resolve {
            target: Target { repo: "/r".into(), name: "a".into() },
            git_env: vec![("GIT_AUTHOR_NAME".into(), "x".into())],
            profile: Some("claude".into()),
            env: vec![],
        }));
        round_trip(ServerMsg::Reply(Reply::Conflict(vec!["a.txt".into()])));
        round_trip(ClientMsg::Request(Request::Merge {
            target: Target { repo: "/r".into(), name: "a".into() },
            mode: MergeMode::Squash,
            keep: true,
            message: Some("m".into()),
            yes: false,
            git_env: vec![("GIT_AUTHOR_NAME".into(), "Me".into())],
        }));
        round_trip(ClientMsg::Request(Request::Sync { target: target(), git_env: vec![] }));
    }

    #[test]
    fn hello_is_readable_by_any_version() {
        // Hello must stay variant 0 with the version as its first field, so that an old or new
        // peer can read the version and refuse cleanly instead of misreading.
        let bytes = encode(&ClientMsg::Hello { version: 77, client: "z".into() }).unwrap();
        assert_eq!(bytes[4], 0, "Hello is variant 0");
        assert_eq!(bytes[5], 77, "version comes first (varint)");
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        assert!(matches!(decode::<ClientMsg>(&[0xff, 0xff, 0xff]), Err(FrameError::Malformed(_))));
        let mut bytes = encode(&ClientMsg::Detach).unwrap();
        bytes.push(0);
        assert!(matches!(decode::<ClientMsg>(&bytes[4..]), Err(FrameError::Malformed(_))));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let mut data: &[u8] = &((MAX_FRAME as u32) + 1).to_be_bytes();
        let r: Result<ClientMsg, _> = read_frame(&mut data).await;
        assert!(matches!(r, Err(FrameError::TooLarge(_))));
    }

    #[tokio::test]
    async fn truncated_frame_reads_as_closed() {
        let mut bytes = encode(&ClientMsg::Request(Request::Ping)).unwrap();
        bytes.truncate(bytes.len() - 1);
        let mut data: &[u8] = &bytes;
        let r: Result<ClientMsg, _> = read_frame(&mut data).await;
        assert!(matches!(r, Err(FrameError::Closed)));
    }

    #[tokio::test]
    async fn frames_stream_back_to_back() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ClientMsg::Request(Request::Ping)).await.unwrap();
        write_frame(&mut buf, &ClientMsg::Detach).await.unwrap();
        let mut data: &[u8] = &buf;
        let a: ClientMsg = read_frame(&mut data).await.unwrap();
        let b: ClientMsg = read_frame(&mut data).await.unwrap();
        assert_eq!(a, ClientMsg::Request(Request::Ping));
        assert_eq!(b, ClientMsg::Detach);
    }
}
