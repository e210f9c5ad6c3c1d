using ActorPool.Protocol;

namespace ActorPool.Queues;

// A queue's protocol. Items travel in segments: each a serialized T[] of one producer's puts, in order. A process
// talks to a queue through one client actor (its identity for credits, watched by the queue).

/// <summary>Items put in one process, in order. Reply <see cref="QPutAck"/>; <see cref="QPutAck.Error"/> when the queue was completed.</summary>
internal sealed record QPut(long Seq, byte[] Items, int Count) : IPoolMessage;

internal sealed record QPutAck(long Seq, string? Error) : IPoolMessage;

/// <summary>
/// A bounded queue's producer asks for room for up to <paramref name="Want"/> items; the queue grants what is free
/// (first come, first served) now or later. <paramref name="Wait"/> false: a grant of 0 now rather than waiting.
/// </summary>
internal sealed record QCreditRequest(long Id, int Want, bool Wait) : IPoolMessage;

internal sealed record QCreditGrant(long Id, int Credits, bool Completed) : IPoolMessage;

/// <summary>The producer no longer waits for <see cref="QCreditRequest"/> <paramref name="Id"/>.</summary>
internal sealed record QCreditCancel(long Id) : IPoolMessage;

/// <summary>Room granted and not used: free for others again.</summary>
internal sealed record QReturnCredits(int Credits) : IPoolMessage;

/// <summary>A consumer asks for up to <paramref name="Max"/> items; answered with <see cref="QItems"/> when there are some (or the queue completed).</summary>
internal sealed record QTake(long Id, int Max) : IPoolMessage;

/// <summary>Items for <see cref="QTake"/> <paramref name="Id"/> in order; none and <paramref name="Completed"/>: the queue is drained and completed.</summary>
internal sealed record QItems(long Id, byte[][] Segments, int Count, bool Completed) : IPoolMessage;

/// <summary>The consumer no longer waits for <see cref="QTake"/> <paramref name="Id"/>.</summary>
internal sealed record QCancelTake(long Id) : IPoolMessage;

/// <summary>Items a consumer received and did not use: back to the front of the queue, in order.</summary>
internal sealed record QReturnItems(byte[][] Segments, int Count) : IPoolMessage;

/// <summary>No more items will be put; consumers drain what is there. Reply <see cref="QStatus"/>.</summary>
internal sealed record QComplete : IPoolMessage;

/// <summary>Reply <see cref="QStatus"/>.</summary>
internal sealed record QGetStatus : IPoolMessage;

internal sealed record QStatus(int Count, bool Completed, long Unfinished) : IPoolMessage;

/// <summary>A joinable queue's item was processed. Reply <see cref="QTaskDoneReply"/>.</summary>
internal sealed record QTaskDone : IPoolMessage;

internal sealed record QTaskDoneReply(string? Error) : IPoolMessage;

/// <summary>Reply <see cref="QStatus"/> once every item put was marked done.</summary>
internal sealed record QJoin : IPoolMessage;
