//! `pollwatch::tower::WatchRequests` makes each gRPC method of a real tonic server a pollwatch
//! site of its own, named by its method and path, with no change to the service and in any
//! build, and a stall is attributed to its method. The service is console-api's generated
//! `Instrument` server (tokio-console's protocol), called by its generated client.
#![cfg(feature = "tower")]

mod support;

use std::time::Duration;

use console_api::instrument::instrument_client::InstrumentClient;
use console_api::instrument::instrument_server::{Instrument, InstrumentServer};
use console_api::instrument::{
    InstrumentRequest, PauseRequest, PauseResponse, ResumeRequest, ResumeResponse, State,
    StateRequest, TaskDetailsRequest, Update,
};
use console_api::tasks::TaskDetails;
use pollwatch::Builder;
use tonic::{Request, Response, Status};

type Stream<T> = tonic::codegen::tokio_stream::Empty<Result<T, Status>>;

/// `Pause` yields once; `Resume` blocks its worker in `std::thread::sleep`.
struct Service;

#[tonic::async_trait]
impl Instrument for Service {
    type WatchUpdatesStream = Stream<Update>;
    type WatchTaskDetailsStream = Stream<TaskDetails>;
    type WatchStateStream = Stream<State>;

    async fn watch_updates(
        &self,
        _: Request<InstrumentRequest>,
    ) -> Result<Response<Self::WatchUpdatesStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn watch_task_details(
        &self,
        _: Request<TaskDetailsRequest>,
    ) -> Result<Response<Self::WatchTaskDetailsStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn watch_state(
        &self,
        _: Request<StateRequest>,
    ) -> Result<Response<Self::WatchStateStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn pause(&self, _: Request<PauseRequest>) -> Result<Response<PauseResponse>, Status> {
        tokio::task::yield_now().await;
        Ok(Response::new(PauseResponse {}))
    }

    async fn resume(&self, _: Request<ResumeRequest>) -> Result<Response<ResumeResponse>, Status> {
        std::thread::sleep(Duration::from_millis(120));
        Ok(Response::new(ResumeResponse {}))
    }
}

#[test]
fn each_method_is_a_site_named_by_its_path_with_its_own_polls_and_stalls() {
    let handle =
        pollwatch::test_support::start(Builder::new().threshold(Duration::from_millis(20)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(
        tonic::transport::Server::builder()
            .layer(pollwatch::tower::WatchRequests)
            .add_service(InstrumentServer::new(Service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    rt.block_on(async {
        let mut client = InstrumentClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        for _ in 0..5 {
            client.pause(PauseRequest {}).await.unwrap();
        }
        client.resume(ResumeRequest {}).await.unwrap();
    });
    server.abort();
    drop(rt);
    handle.shutdown();
    let report = handle.report();
    let site = |name: &str| support::routes::site(&report, name);
    let pause = site("POST /rs.tokio.console.instrument.Instrument/Pause");
    assert!(pause.file.ends_with("src/tower.rs"), "{pause:#?}");
    assert_eq!(pause.kind, "watched");
    assert_eq!(pause.tasks_spawned, 5, "five calls");
    assert!(pause.polls >= 10, "each call yields once: {pause:#?}");
    let resume = site("POST /rs.tokio.console.instrument.Instrument/Resume");
    assert_eq!(
        (&resume.file, resume.line, resume.col),
        (&pause.file, pause.line, pause.col),
        "one layer, one location"
    );
    assert_eq!(resume.tasks_spawned, 1);
    assert!(resume.slow_polls >= 1, "{resume:#?}");
    assert_eq!(report.stalls.len(), 1, "{:#?}", report.stalls);
    assert_eq!(report.stalls[0].site, resume.label);
    assert_eq!(report.stalls[0].cause, "sleep");
}
