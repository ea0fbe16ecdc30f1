//! Commands through `arbe-sandboxd`, the executor that images labelled `arbe.executor` run as
//! their main process: one attach stream per container, a frame per command
//! ([`arbe_runtime::framed`]). A `docker exec` makes the engine and runc enter the container's
//! namespaces for every command; a frame on an open stream costs far less.

use std::sync::Arc;

use arbe_runtime::framed::Executor;
use bollard::{Docker, container::LogOutput, errors::Error as BollardError, query_parameters::AttachContainerOptions};
use futures_util::StreamExt;

/// The image label naming the executor's path; containers created from such an image run it.
pub(crate) const EXECUTOR_LABEL: &str = "arbe.executor";

/// Attaches to the container's executor: its standard input takes frames, its standard output
/// carries them back.
pub(crate) async fn attach(docker: &Docker, container: &str) -> Result<Arc<Executor>, BollardError> {
    let options = AttachContainerOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        stream: true,
        logs: false,
        ..Default::default()
    };
    let attached = docker.attach_container(container, Some(options)).await?;
    let output = attached.output.take_while(|chunk| std::future::ready(chunk.is_ok())).filter_map(|chunk| {
        std::future::ready(match chunk {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => Some(message.to_vec()),
            _ => None,
        })
    });
    Ok(Executor::new(attached.input, output))
}
