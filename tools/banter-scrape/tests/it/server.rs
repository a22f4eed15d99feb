//! A fixture web server on 127.0.0.1 (tiny_http), started per test: the files of testdata/scrape/site plus
//! routes that misbehave (redirects, 404, 503-then-200, slow, oversized, not HTML) and a MediaWiki API mock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tiny_http::{Header, Response, Server};

/// A running server; it stops when the test process ends.
pub struct Site {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Requests served, by path, for politeness checks.
    pub hits: Arc<std::sync::Mutex<Vec<String>>>,
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap()
}

pub fn start() -> Site {
    let server = Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hits2 = hits.clone();
    let flaky = Arc::new(AtomicUsize::new(0));
    let root = crate::site();
    thread::spawn(move || {
        for req in server.incoming_requests() {
            // One thread per request, so a slow route does not hold up the others.
            let (hits2, flaky, root) = (hits2.clone(), flaky.clone(), root.clone());
            thread::spawn(move || serve(req, &hits2, &flaky, &root));
        }
    });
    Site { base, hits }
}

fn serve(req: tiny_http::Request, hits2: &std::sync::Mutex<Vec<String>>, flaky: &AtomicUsize, root: &std::path::Path) {
    {
        {
            let url = req.url().to_string();
            let path = url.split('?').next().unwrap_or("/").to_string();
            hits2.lock().unwrap().push(url.clone());
            let resp = match path.as_str() {
                "/redirect" => Response::from_string("")
                    .with_status_code(301)
                    .with_header(header("Location", "/articles/green-tea.html")),
                "/redirect-loop" => {
                    Response::from_string("").with_status_code(302).with_header(header("Location", "/redirect-loop"))
                }
                "/flaky" => {
                    if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                        Response::from_string("busy").with_status_code(503).with_header(header("Retry-After", "1"))
                    } else {
                        html(&std::fs::read_to_string(root.join("loop/a.html")).unwrap())
                    }
                }
                "/slow" => {
                    thread::sleep(Duration::from_secs(3));
                    html("<html><body><p>too late, far too late for anyone waiting a second only.</p></body></html>")
                }
                "/big" => html(&format!("<html><body><p>{}</p></body></html>", "big page ".repeat(300_000))),
                "/image.png" => {
                    Response::from_data(vec![0x89, b'P', b'N', b'G']).with_header(header("Content-Type", "image/png"))
                }
                "/w/api.php" => crate::mediawiki::answer(&url),
                "/trickle" => {
                    // Headers at once, then one byte every 200 ms for a minute.
                    let body = Trickle(300);
                    let r = Response::new(
                        tiny_http::StatusCode(200),
                        vec![header("Content-Type", "text/html")],
                        body,
                        Some(300),
                        None,
                    );
                    let _ = req.respond(r);
                    return;
                }
                p if p.starts_with("/hops/") => {
                    // `/hops/N` redirects N times before landing on an article.
                    let n: usize = p["/hops/".len()..].parse().unwrap_or(0);
                    let next = if n <= 1 { "/articles/green-tea.html".to_string() } else { format!("/hops/{}", n - 1) };
                    Response::from_string("").with_status_code(302).with_header(header("Location", &next))
                }
                _ => {
                    let file = root.join(path.trim_start_matches('/'));
                    let file = if path.ends_with('/') || path == "/" { file.join("index.html") } else { file };
                    match std::fs::read(&file) {
                        Ok(bytes) => {
                            let ctype = if path.ends_with(".txt") { "text/plain" } else { "text/html" };
                            Response::from_data(bytes).with_header(header("Content-Type", ctype))
                        }
                        Err(_) => Response::from_string("not found").with_status_code(404),
                    }
                }
            };
            let _ = req.respond(resp);
        }
    }
}

/// A body that yields one byte every 200 ms.
struct Trickle(usize);

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 || buf.is_empty() {
            return Ok(0);
        }
        thread::sleep(Duration::from_millis(200));
        self.0 -= 1;
        buf[0] = b' ';
        Ok(1)
    }
}

fn html(s: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(s.as_bytes().to_vec()).with_header(header("Content-Type", "text/html; charset=utf-8"))
}
