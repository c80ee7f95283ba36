/**
 * Newline-delimited JSON from a byte stream (an HTTP response body): the agent's event stream and
 * every logs stream use it. Blank lines are skipped; a partial last line waits for its newline.
 * @module
 */
export async function* parseNdjson<T>(body: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
}
