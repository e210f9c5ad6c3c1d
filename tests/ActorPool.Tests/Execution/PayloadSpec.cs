using System.Linq.Expressions;
using ActorPool.Execution;
using Xunit;

namespace ActorPool.Tests.Execution;

public class PayloadSpec
{
    private static int Square(int x) => x * x;

    [Fact]
    public void Payload_must_round_trip_static_methods_lambdas_and_closures()
    {
        var k = 3;
        var tag = "n=";
        Func<int, string> closure = x => tag + (x * k);
        foreach (var (fn, expected) in new (Func<int, string>, string)[]
                 {
                     (x => Square(x).ToString(), "16"),
                     (x => (x + 1).ToString(), "5"),
                     (closure, "n=12"),
                 })
        {
            var bytes = Payload.SerializeFunction(fn, new MapFunction<int, string>(fn), "task function");
            var copy = (TaskFunction)Payload.Deserialize(bytes)!;
            var outcome = copy.Run(new[] { 4 }, new ActorPool.Worker.TaskClock());
            Assert.Null(outcome.Error);
            Assert.Equal(expected, ((string[])outcome.Results)[0]);
        }
    }

    [Fact]
    public void Payload_must_name_a_captured_value_bound_to_this_process()
    {
        using var stream = new MemoryStream();
        Func<int, int> fn = x => x + (int)stream.Length;
        var error = Assert.Throws<NotSendableException>(() => Payload.SerializeFunction(fn, new MapFunction<int, int>(fn), "task function"));
        Assert.Contains("stream", error.Message);
        Assert.Contains("System.IO.MemoryStream", error.Message);
        Assert.Contains("inside the task", error.Message);
        Assert.DoesNotContain("does not use", error.Message); // this lambda does use it
    }

    [Fact]
    public void Payload_must_say_when_the_refused_captured_value_belongs_to_a_sibling_lambda()
    {
        // C# gives both lambdas one closure object: the first, which never touches the stream, carries it too.
        using var stream = new MemoryStream();
        var k = 3;
        Func<int, int> pure = x => x * k;
        Func<int, long> other = x => x + stream.Length;
        var error = Assert.Throws<NotSendableException>(() => Payload.SerializeFunction(pure, new MapFunction<int, int>(pure), "task function"));
        Assert.Contains("stream", error.Message);
        Assert.Contains("This lambda does not use 'stream' itself", error.Message);
        Assert.Contains("one closure object per scope", error.Message);
        Assert.Equal(3, other(0) + 3 - stream.Length);
    }

    [Fact]
    public void Payload_must_refuse_a_function_compiled_at_run_time()
    {
        Expression<Func<int, int>> expr = x => x + 1;
        var fn = expr.Compile();
        var error = Assert.Throws<NotSendableException>(() => Payload.SerializeFunction(fn, new MapFunction<int, int>(fn), "task function"));
        Assert.Contains("generated at run time", error.Message);
    }

    [Fact]
    public void Payload_must_name_the_argument_that_cannot_be_sent()
    {
        var items = new object[] { 1, "two", new CancellationTokenSource() };
        var error = Assert.Throws<NotSendableException>(() => Payload.SerializeItems(items, 10));
        Assert.Contains("Argument 12", error.Message);
        Assert.Contains("CancellationTokenSource", error.Message);
    }

    [Fact]
    public void Map_function_must_stop_at_the_first_exception_and_keep_earlier_results()
    {
        var fn = new MapFunction<int, int>(x => 10 / x);
        var outcome = fn.Run(new[] { 5, 2, 0, 1 }, new ActorPool.Worker.TaskClock());
        Assert.Equal(2, outcome.Completed);
        Assert.Equal(new[] { 2, 5 }, (int[])outcome.Results);
        Assert.IsType<DivideByZeroException>(outcome.Error);
    }
}

public class RawArraysSpec
{
    public static TheoryData<Array> Arrays() => new()
    {
        new byte[] { 0, 1, 255 }, new sbyte[] { -1, 2 }, new short[] { -3, 4 }, new ushort[] { 5 }, new[] { int.MinValue, 0, int.MaxValue },
        new uint[] { 7 }, new[] { long.MinValue, 9L }, new ulong[] { ulong.MaxValue }, new[] { 1.5f, float.NaN }, new[] { double.Epsilon, -0.0 },
        new[] { true, false }, new[] { 'a', 'é' }, new[] { 1.1m, decimal.MaxValue }, Array.Empty<int>(),
        new[] { new byte[] { 1, 2 }, null, [] },
        new[] { "a", null, "", "été ✓ 𝄞", "\ud800 lone surrogate", new string('x', 100_000) }, Array.Empty<string>(),
    };

    [Theory]
    [MemberData(nameof(Arrays))]
    public void Arrays_of_numbers_byte_arrays_and_strings_must_round_trip_through_the_raw_encoding(Array array)
    {
        var bytes = Payload.Serialize(array);
        Assert.Equal(1, bytes[0]); // the raw format, not Hyperion
        var copy = (Array)Payload.Deserialize(bytes)!;
        Assert.Equal(array.GetType(), copy.GetType());
        Assert.Equal(array, copy);
    }

    [Fact]
    public void Other_values_must_go_through_Hyperion_and_unknown_formats_must_be_named()
    {
        var objects = Payload.Serialize(new object?[] { "a", null, 3 });
        Assert.Equal(0, objects[0]);
        Assert.Equal(new object?[] { "a", null, 3 }, (object?[])Payload.Deserialize(objects)!);
        var e = Assert.Throws<InvalidDataException>(() => Payload.Deserialize([9, 1, 2]));
        Assert.Contains("different ActorPool versions", e.Message);
    }

    [Fact]
    public void A_string_array_claiming_more_than_its_bytes_hold_must_be_refused_before_allocating()
    {
        var bytes = Payload.Serialize(new[] { "abc" });
        // The first string's length (3 chars) becomes 200 million.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(6), 200_000_000);
        Assert.Contains("damaged or forged", Assert.Throws<InvalidDataException>(() => Payload.Deserialize(bytes)).Message);
    }
}
