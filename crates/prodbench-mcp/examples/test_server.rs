//! The test MCP server (see `tests/common/server.rs`) serving stdio; the
//! `connect_command` tests spawn it.

#[path = "../tests/common/server.rs"]
mod server;

use rmcp::ServiceExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = server::TestServer::default().serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
