// api.js — the REST client: same-origin fetch with the session cookie, JSON in and out,
// failures as ApiError {status, detail, body}.

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

let unauthorized = () => {};

/** Called when any request (other than logging in) answers 401: the session has ended. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function describe(body, response) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((item) => String(item.msg || "").replace(/^Value error, /, ""))
      .filter(Boolean)
      .join("; ");
  }
  return `${response.status} ${response.statusText}`.trim();
}

/**
 * api("/tasks", {query: {status: "open"}}) -> the parsed JSON body.
 * Options: method, body (sent as JSON), query (empty values skipped), headers.
 */
export async function api(path, { method = "GET", body, query, headers = {} } = {}) {
  let url = `/api/v1${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, "The server cannot be reached; try again in a moment.", null);
  }
  const text = response.status === 204 ? "" : await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/auth/login")) unauthorized();
    throw new ApiError(response.status, describe(data, response), data);
  }
  return data;
}
