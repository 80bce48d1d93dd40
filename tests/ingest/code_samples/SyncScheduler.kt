package com.example.sync

import kotlinx.coroutines.delay
import java.time.Duration

/** How often a job runs. */
enum class Frequency(val period: Duration) {
    HOURLY(Duration.ofHours(1)),
    DAILY(Duration.ofDays(1));

    fun next(from: Long): Long = from + period.toMillis()
}

/** A unit of work the scheduler can run. */
interface Job {
    val name: String

    suspend fun run(): Result<Unit>
}

data class JobRecord(val name: String, val lastRun: Long?)

/**
 * Runs registered jobs on their schedule.
 */
class SyncScheduler(private val clock: () -> Long) {
    private val jobs = mutableMapOf<String, Pair<Job, Frequency>>()

    init {
        require(clock() >= 0) { "clock must not go negative" }
    }

    constructor() : this(System::currentTimeMillis)

    /** Adds a job; replaces one with the same name. */
    fun register(job: Job, frequency: Frequency) {
        jobs[job.name] = job to frequency
    }

    fun register(jobs: Collection<Job>) = jobs.forEach { register(it, Frequency.DAILY) }

    @Throws(IllegalStateException::class)
    suspend fun runDue(records: Map<String, JobRecord>): List<String> {
        val ran = mutableListOf<String>()
        for ((name, entry) in jobs) {
            val (job, frequency) = entry
            val last = records[name]?.lastRun ?: 0L
            if (frequency.next(last) <= clock()) {
                job.run().getOrThrow()
                ran += name
            }
        }
        return ran
    }

    companion object {
        const val MAX_JOBS = 64

        fun withSystemClock(): SyncScheduler = SyncScheduler()
    }
}

object Backoff {
    suspend fun retry(times: Int, block: suspend () -> Unit) {
        repeat(times) { attempt ->
            runCatching { block() }.onSuccess { return }
            delay(100L shl attempt)
        }
    }
}

fun Duration.toMinutesText(): String = "${toMinutes()} min"
