//! A tiny MCP server for the tests, built on rmcp's server side. Shared by the
//! integration tests (in-process) and `examples/test_server.rs` (stdio).
//!
//! `tools/list` answers one tool per page, so the client must follow
//! pagination to see them all.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ErrorData, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};

/// Names of all tools, in the order `tools/list` pages through them.
#[allow(dead_code)]
pub const TOOL_NAMES: &[&str] = &["add", "echo", "fail", "mixed", "sleep", "whoami"];

/// Environment variable the `whoami` tool reports.
#[allow(dead_code)]
pub const MARKER_VAR: &str = "PRODBENCH_MCP_TEST_MARKER";

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct AddRequest {
    /// first addend
    pub a: i64,
    /// second addend
    pub b: i64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoRequest {
    /// text to send back
    pub text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct SleepRequest {
    /// how long to sleep, in milliseconds
    pub ms: u64,
}

#[derive(Debug, Clone)]
pub struct TestServer {
    tool_router: ToolRouter<Self>,
}

impl Default for TestServer {
    fn default() -> Self {
        Self { tool_router: Self::tool_router() }
    }
}

#[tool_router]
impl TestServer {
    #[tool(description = "Add two integers")]
    fn add(&self, Parameters(AddRequest { a, b }): Parameters<AddRequest>) -> String {
        (a + b).to_string()
    }

    #[tool(description = "Send the text back")]
    fn echo(&self, Parameters(EchoRequest { text }): Parameters<EchoRequest>) -> String {
        text
    }

    #[tool(description = "Always fails")]
    fn fail(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text("this tool always fails")])
    }

    #[tool(description = "Returns text, an image and more text")]
    fn mixed(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text("before"), ContentBlock::image("iVBORw0KGgo=", "image/png"), ContentBlock::text("after")])
    }

    #[tool(description = "Sleeps, then answers `slept`")]
    async fn sleep(&self, Parameters(SleepRequest { ms }): Parameters<SleepRequest>) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        "slept".to_owned()
    }

    #[tool(description = "Reports the server's process id and marker variable")]
    fn whoami(&self) -> String {
        let marker = std::env::var(MARKER_VAR).unwrap_or_default();
        format!("pid={} marker={marker}", std::process::id())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(&self, request: Option<PaginatedRequestParams>, _context: RequestContext<RoleServer>) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.tool_router.list_all();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let index: usize = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor.parse().ok().filter(|i| *i < tools.len()).ok_or_else(|| ErrorData::invalid_params("bad cursor", None))?,
        };
        let mut page = ListToolsResult::with_all_items(vec![tools[index].clone()]);
        page.next_cursor = (index + 1 < tools.len()).then(|| (index + 1).to_string());
        Ok(page)
    }
}
