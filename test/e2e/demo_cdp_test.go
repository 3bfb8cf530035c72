package e2e

// A minimal client of the Chrome DevTools Protocol, enough to drive a real
// headless Chromium through a login form: a websocket client (RFC 6455, text
// frames, client-side masking, ping/pong, fragmented messages) and the CDP
// request/response/event plumbing on top. Written here rather than imported
// so the test suite needs no module beyond the standard library.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// demoWebsocket is one client websocket connection.
type demoWebsocket struct {
	conn    net.Conn
	r       *bufio.Reader
	writeMu sync.Mutex
}

// websocketGUID is the fixed string of RFC 6455's opening handshake.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func demoDialWebsocket(rawURL string) (*demoWebsocket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("websocket url %q: %w", rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", u.Host, err)
	}
	keyBytes := make([]byte, 16)
	if _, err := rand.Read(keyBytes); err != nil {
		conn.Close()
		return nil, err
	}
	key := base64.StdEncoding.EncodeToString(keyBytes)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, &http.Request{Method: http.MethodGet})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake response: %w", err)
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake refused: %s", resp.Status)
	}
	return &demoWebsocket{conn: conn, r: r}, nil
}

// writeFrame sends one final frame; a client masks every frame it sends.
func (ws *demoWebsocket) writeFrame(opcode byte, payload []byte) error {
	ws.writeMu.Lock()
	defer ws.writeMu.Unlock()
	var head bytes.Buffer
	head.WriteByte(0x80 | opcode)
	switch n := len(payload); {
	case n < 126:
		head.WriteByte(0x80 | byte(n))
	case n <= 0xffff:
		head.WriteByte(0x80 | 126)
		binary.Write(&head, binary.BigEndian, uint16(n))
	default:
		head.WriteByte(0x80 | 127)
		binary.Write(&head, binary.BigEndian, uint64(n))
	}
	var mask [4]byte
	if _, err := rand.Read(mask[:]); err != nil {
		return err
	}
	head.Write(mask[:])
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	_, err := ws.conn.Write(append(head.Bytes(), masked...))
	return err
}

// readMessage returns the next text or binary message, answering pings and
// joining fragments on the way.
func (ws *demoWebsocket) readMessage() ([]byte, error) {
	var message []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(ws.r, h[:]); err != nil {
			return nil, err
		}
		fin, opcode := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l uint16
			if err := binary.Read(ws.r, binary.BigEndian, &l); err != nil {
				return nil, err
			}
			n = uint64(l)
		case 127:
			if err := binary.Read(ws.r, binary.BigEndian, &n); err != nil {
				return nil, err
			}
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(ws.r, mask); err != nil {
				return nil, err
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(ws.r, payload); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		switch opcode {
		case 0x8: // close
			return nil, io.EOF
		case 0x9: // ping
			if err := ws.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA: // pong
			continue
		}
		message = append(message, payload...)
		if fin {
			return message, nil
		}
	}
}

func (ws *demoWebsocket) Close() error {
	ws.writeFrame(0x8, nil)
	return ws.conn.Close()
}

// demoCDPMessage is any message Chromium sends: a response (ID set) or an
// event (Method set), either possibly for a target session.
type demoCDPMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// demoCDP is a DevTools connection to the browser endpoint.
type demoCDP struct {
	ws      *demoWebsocket
	timeout time.Duration

	mu       sync.Mutex
	nextID   int64
	pending  map[int64]chan demoCDPMessage
	waiters  []*demoCDPWaiter
	readErr  error
	readDone chan struct{}
}

// demoCDPWaiter receives the first event of one method in one session.
type demoCDPWaiter struct {
	session, method string
	ch              chan demoCDPMessage
}

func demoConnectCDP(wsURL string, timeout time.Duration) (*demoCDP, error) {
	ws, err := demoDialWebsocket(wsURL)
	if err != nil {
		return nil, err
	}
	c := &demoCDP{ws: ws, timeout: timeout, pending: map[int64]chan demoCDPMessage{}, readDone: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *demoCDP) readLoop() {
	defer close(c.readDone)
	for {
		data, err := c.ws.readMessage()
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		var msg demoCDPMessage
		if err := json.Unmarshal(data, &msg); err != nil {
			continue // not ours to understand; CDP only sends JSON objects
		}
		c.mu.Lock()
		if msg.ID != 0 {
			if ch, ok := c.pending[msg.ID]; ok {
				delete(c.pending, msg.ID)
				ch <- msg
			}
		} else {
			kept := c.waiters[:0]
			for _, w := range c.waiters {
				if w.method == msg.Method && w.session == msg.SessionID {
					w.ch <- msg
				} else {
					kept = append(kept, w)
				}
			}
			c.waiters = kept
		}
		c.mu.Unlock()
	}
}

// Call sends a command (to a target session when session is not empty) and
// returns its result.
func (c *demoCDP) Call(session, method string, params any, result any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan demoCDPMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	if session != "" {
		req["sessionId"] = session
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := c.ws.writeFrame(0x1, data); err != nil {
		return fmt.Errorf("cdp %s: %w", method, err)
	}
	select {
	case msg := <-ch:
		if msg.Error != nil {
			return fmt.Errorf("cdp %s: %s (%d)", method, msg.Error.Message, msg.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(msg.Result, result)
		}
		return nil
	case <-c.readDone:
		return fmt.Errorf("cdp %s: connection lost: %v", method, c.readErr)
	case <-time.After(c.timeout):
		return fmt.Errorf("cdp %s: no answer within %s", method, c.timeout)
	}
}

// Expect registers interest in the next event of method in session; call it
// before the action that causes the event, then Wait on what it returns.
func (c *demoCDP) Expect(session, method string) *demoCDPWaiter {
	w := &demoCDPWaiter{session: session, method: method, ch: make(chan demoCDPMessage, 1)}
	c.mu.Lock()
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	return w
}

// Wait returns the event w was registered for.
func (c *demoCDP) Wait(w *demoCDPWaiter) (demoCDPMessage, error) {
	select {
	case msg := <-w.ch:
		return msg, nil
	case <-c.readDone:
		return demoCDPMessage{}, fmt.Errorf("cdp: connection lost waiting for %s: %v", w.method, c.readErr)
	case <-time.After(c.timeout):
		return demoCDPMessage{}, fmt.Errorf("cdp: no %s event within %s", w.method, c.timeout)
	}
}

// Evaluate runs a JavaScript expression in the page and returns its value.
func (c *demoCDP) Evaluate(session, expression string, value any) error {
	var out struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := c.Call(session, "Runtime.evaluate", map[string]any{"expression": expression, "returnByValue": true}, &out)
	if err != nil {
		return err
	}
	if out.ExceptionDetails != nil {
		return fmt.Errorf("evaluating %q: %s", expression, out.ExceptionDetails.Text)
	}
	if len(out.Result.Value) == 0 {
		return errors.New("evaluating " + strings.TrimSpace(expression) + ": no value")
	}
	return json.Unmarshal(out.Result.Value, value)
}

func (c *demoCDP) Close() error { return c.ws.Close() }
