using Akka.Actor;
using ActorPool.Execution;

namespace ActorPool.Protocol;

/// <summary>
/// Marker of every message that crosses a process boundary between a coordinator and a worker node.
/// Bound to Hyperion in reference.conf; user payloads travel inside as bytes the pool serialized itself.
/// </summary>
internal interface IPoolMessage;

/// <summary>
/// A registered worker's message to its coordinator, on either channel (<see cref="IWorkerChannel"/>): the coordinator
/// acts on it only as coming from the worker the channel proved sent it.
/// </summary>
internal interface IWorkerMessage : IPoolMessage;

/// <summary>Identifies one chunk of one call: the unit of dispatch, retry and exactly-once delivery.</summary>
internal readonly record struct ChunkId(long CallId, int Index)
{
    public override string ToString() => $"call {CallId} chunk {Index}";
}

// ---------------------------------------------------------------- worker node -> coordinator

/// <summary>
/// A worker actor asks to join the pool. First without <see cref="Proof"/>: the reply is a <see cref="RegisterChallenge"/>;
/// then answering it (<see cref="ChallengeNonce"/>, <see cref="Proof"/>): the reply is <see cref="WorkerAccepted"/> or
/// <see cref="WorkerRejected"/>. The secret itself is never sent (see <see cref="Protocol.Proof"/>).
/// </summary>
internal sealed record RegisterWorker(string WorkerId, int Pid, string Host, IActorRef Worker, string WorkerNonce, string ChallengeNonce = "", string Proof = "")
    : IPoolMessage;

/// <summary>
/// The coordinator's answer to a registration without proof: its own proof of the secret (over the worker's nonce and
/// <see cref="ChallengeNonce"/>), which the worker checks before it answers the challenge.
/// </summary>
internal sealed record RegisterChallenge(string WorkerId, string ChallengeNonce, string Proof) : IPoolMessage;

/// <summary>The worker ran the pool's initializer (if any) and takes work.</summary>
internal sealed record WorkerReady(string WorkerId) : IWorkerMessage;

/// <summary>The pool's initializer threw in this worker; the pool cannot run tasks.</summary>
internal sealed record WorkerInitFailed(string WorkerId, TaskError Error) : IWorkerMessage;

/// <summary>
/// The outcome of one <see cref="RunChunk"/>: the serialized results of the first <see cref="Completed"/> items
/// (a <c>TResult[]</c>), and the error of item <see cref="Completed"/> when <see cref="Error"/> is set.
/// </summary>
internal sealed record ChunkDone(ChunkId Chunk, int Attempt, Blob Results, int Completed, TaskError? Error, long ElapsedTicks) : IWorkerMessage;

/// <summary>
/// Several outcomes at once: a worker running many short chunks in a row holds their results for at most about a
/// millisecond and sends them together.
/// </summary>
internal sealed record ChunksDone(ChunkDone[] Results) : IWorkerMessage;

/// <summary>A worker node is leaving: send this worker no new work. Reply: <see cref="DrainAck"/>.</summary>
internal sealed record WorkerDraining(string WorkerId) : IWorkerMessage;

// ---------------------------------------------------------------- coordinator -> worker node

/// <summary>No work follows this message to the draining worker (messages between two actors keep their order).</summary>
internal sealed class DrainAck : IPoolMessage
{
    public static DrainAck Instance { get; } = new();
    private DrainAck() { }
}

/// <summary>
/// Registration accepted. <see cref="Initializer"/> is a serialized <see cref="Execution.PoolInitializer"/> or empty.
/// The worker answers <see cref="WorkerReady"/> or <see cref="WorkerInitFailed"/>.
/// </summary>
internal sealed record WorkerAccepted(byte[] Initializer) : IPoolMessage;

/// <summary>
/// Registration refused; the worker logs the reason and exits. <see cref="Retry"/>: the refusal is about the pool's
/// state (shutting down, broken), not about the worker, so a worker node may offer its workers again later.
/// </summary>
internal sealed record WorkerRejected(string Reason, bool Retry = false) : IPoolMessage;

/// <summary>
/// Run one chunk. <see cref="Function"/> is the serialized <see cref="Execution.TaskFunction"/> of the call, sent with
/// the first chunk of a call a worker sees and empty afterwards (the worker caches it until <see cref="ForgetCall"/>).
/// A non-zero <see cref="FunctionKey"/> marks a function without state that the worker may keep across calls.
/// <see cref="Items"/> is a serialized <c>T[]</c> (inline, or a file of the pool's spill folder). <see cref="SoftMs"/> and
/// <see cref="HardMs"/> are each task's time limits (0: none; see <see cref="TaskTimeouts"/>). <see cref="TraceParent"/> is the
/// call's W3C trace context when the caller traces it (tasks' spans are its children), and <see cref="FirstIndex"/> the
/// index of the chunk's first item in the call's input. Reply: <see cref="ChunkDone"/>.
/// </summary>
internal sealed record RunChunk(ChunkId Chunk, int Attempt, byte[] Function, long FunctionKey, Blob Items, int SoftMs = 0, int HardMs = 0,
    string? TraceParent = null, long FirstIndex = 0) : IPoolMessage;

/// <summary>Several chunks for one worker at once (when its window is wider than one), run in order.</summary>
internal sealed record RunChunks(RunChunk[] Chunks) : IPoolMessage;

/// <summary>A call has ended; the worker drops its cached function.</summary>
internal sealed record ForgetCall(long CallId) : IPoolMessage;

/// <summary>The worker finishes what it holds and its process exits with code 0 (maxtasksperchild, close).</summary>
internal sealed class Retire : IPoolMessage
{
    public static Retire Instance { get; } = new();
    private Retire() { }
}

/// <summary>
/// Another process asks a coordinator for its <see cref="ActorPool.PoolStatus"/> (the node program's status command).
/// First without <see cref="Proof"/>: the reply is a <see cref="StatusChallenge"/>; then answering it with a proof of the
/// cluster's secret (the pool's, for a pool without a cluster): the reply is <see cref="StatusReply"/>.
/// </summary>
internal sealed record StatusRequest(string ClientNonce, string ChallengeNonce = "", string Proof = "") : IPoolMessage;

/// <summary>The coordinator's proof of the secret and its challenge, in answer to a <see cref="StatusRequest"/> without proof.</summary>
internal sealed record StatusChallenge(string ChallengeNonce, string Proof) : IPoolMessage;

/// <summary>The answer to <see cref="StatusRequest"/>: the status, or why it was refused.</summary>
internal sealed record StatusReply(ActorPool.PoolStatus? Status, string? Refused) : IPoolMessage;

/// <summary>
/// The coordinator asks a worker on its data link whether its process still runs; the link's reading thread answers
/// with <see cref="LinkPong"/> at once, whatever its task thread does.
/// </summary>
internal sealed record LinkPing(long Seq);

/// <summary>A worker's answer to <see cref="LinkPing"/>.</summary>
internal sealed record LinkPong(long Seq) : IWorkerMessage;

/// <summary>
/// The pool's tasks use these queues and locks (their owners' paths). Those of <see cref="RelayHost"/> (the pool's
/// own process's host, when it has one) a spawned worker reaches over its data link, with no ActorSystem of its own;
/// for the others it starts its ActorSystem and connects in the background, so a task's first use does not wait.
/// </summary>
internal sealed record LinkWarm(string[] Hosts, string RelayHost = "")
{
    /// <summary>At most this many hosts in one message (a worker ignores the rest).</summary>
    public const int MaxHosts = 16;
}

/// <summary>The first frame a worker sends on the pool's data link: who it is, and that it belongs to this pool.</summary>
internal sealed record DataLinkHello(string WorkerId, string Secret);

/// <summary>An exception raised by user code in a worker, carried as text so any type can travel.</summary>
internal sealed record TaskError(string Type, string Message, string StackTrace)
{
    public static TaskError From(Exception e) =>
        new(e.GetType().FullName ?? e.GetType().Name, e.Message, e.ToString());
}

// A spawned worker's queue and lock clients whose owner is in the pool's own process speak to it over the worker's
// data link: the pool's process relays each client's messages to the owner actor and its answers back (HandleRelay).

/// <summary>Worker → pool: client <see cref="Client"/> (an id of the worker's) wants the owner at <see cref="Owner"/>.</summary>
internal sealed record HandleOpen(int Client, string Owner, int WithinMs);

/// <summary>Pool → worker: the client's owner was found; its messages may go.</summary>
internal sealed record HandleOpened(int Client);

/// <summary>Worker → pool: a message of the client for its owner (serialized).</summary>
internal sealed record HandleTell(int Client, byte[] Message);

/// <summary>Pool → worker: the owner's answer to the client (serialized).</summary>
internal sealed record HandleReply(int Client, byte[] Message);

/// <summary>Pool → worker: the client's owner was not found, or is gone.</summary>
internal sealed record HandleGone(int Client, string Reason);

/// <summary>Worker → pool: the client is done (a one-shot request's answer came); its relay ends.</summary>
internal sealed record HandleRelease(int Client);

/// <summary>
/// Worker → pool: a line the worker's tasks wrote to standard output. On the data link, in order with everything else
/// the worker sends: a line printed before a put reaches the console before the put reaches its queue.
/// </summary>
internal sealed record LinkOutput(string Line);
