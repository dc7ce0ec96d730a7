// Microphone → mono Web Audio graph → MediaRecorder, after Mozilla Common Voice's recorder:
// webm/opus where the browser has it, mp4/aac on Safari; an AnalyserNode drives the level meter and
// tells a muted microphone apart from a quiet one; half a second is kept after Stop so the last word
// is not cut; takes play back through the AudioContext (iOS cannot play its own blob URLs).

import { t } from "./i18n.js";

export const TAIL_MS = 500;
// Common Voice refuses a take whose loudest spectrum bin never passed 8/255.
export const QUIET_PEAK = 8;
// Speech whose loudest 40 ms stays under this (RMS, dBFS) is too quiet to transcribe well: about
// -45 dBFS speech peaks near -40. Normal speech close to a microphone peaks above -25.
export const QUIET_SPEECH_DBFS = -35;

const MIME_TYPES = [
  "audio/webm;codecs=opus",
  "audio/ogg;codecs=opus",
  "audio/mp4;codecs=mp4a.40.2",
  "audio/mp4",
  "audio/webm",
];

export class MicError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "MicError";
    this.code = code;
  }
}

export function pickMimeType() {
  if (typeof MediaRecorder === "undefined") return null;
  return MIME_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) ?? "";
}

function micError(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new MicError(
        "mic_denied",
        t(
          "mic.denied",
          "Microphone access is blocked. Allow it for this site (the icon left of the address bar), then try again.",
        ),
      );
    case "NotFoundError":
    case "OverconstrainedError":
      return new MicError(
        "mic_absent",
        t("mic.absent", "No microphone was found. Plug one in (or enable it), then try again."),
      );
    case "NotReadableError":
    case "AbortError":
      return new MicError(
        "mic_busy",
        t(
          "mic.busy",
          "The microphone cannot be opened; another app may be using it. Close that app, then try again.",
        ),
      );
    default:
      return new MicError(
        "mic_error",
        t("mic.error", "The microphone could not be opened: {message}", {
          message: error && error.message ? error.message : String(error),
        }),
      );
  }
}

export class Recorder extends EventTarget {
  constructor() {
    super();
    this.context = null;
    this.stream = null;
    this.analyser = null;
    this.mediaRecorder = null;
    this.mimeType = null;
    this.recording = false;
    this.startedAt = 0;
    this.stoppedAt = null;
    this.takePeak = 0; // loudest spectrum bin (0-255) seen during the current take
    this.takeLoudestDbfs = -Infinity; // loudest frame (RMS, dBFS) of the current take
    this._timeData = null;
    this._freqData = null;
    this._meterLoop = 0;
  }

  get isOpen() {
    return this.stream !== null;
  }

  /** Ask for the microphone and build the graph. Throws MicError with a message for people. */
  async open() {
    if (this.isOpen) return;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new MicError(
        "mic_insecure",
        t("mic.insecure", "Recording needs a secure page: open this site over https (or on localhost)."),
      );
    }
    this.mimeType = pickMimeType();
    if (this.mimeType === null) {
      throw new MicError(
        "mic_unsupported",
        t("mic.unsupported", "This browser cannot record audio. Use a current Chrome, Firefox, Edge or Safari."),
      );
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        // No automatic gain: it lifts speech far from the microphone (and the room with it) to full
        // level, so a quiet take could not be told apart and the annotator never learns to move closer.
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: false },
      });
    } catch (error) {
      throw micError(error);
    }
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    this.context = this.context || new AudioContextClass();
    if (this.context.state === "suspended") await this.context.resume();
    const source = this.context.createMediaStreamSource(this.stream);
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 2048;
    this.analyser.smoothingTimeConstant = 0.3;
    const destination = this.context.createMediaStreamDestination();
    destination.channelCount = 1; // record mono whatever the microphone delivers
    destination.channelCountMode = "explicit";
    destination.channelInterpretation = "speakers";
    source.connect(this.analyser);
    source.connect(destination);
    this.destination = destination;
    this._source = source;
    this._timeData = new Float32Array(this.analyser.fftSize);
    this._freqData = new Uint8Array(this.analyser.frequencyBinCount);
    for (const track of this.stream.getAudioTracks()) {
      track.addEventListener("ended", () =>
        this.dispatchEvent(
          new CustomEvent("error", {
            detail: new MicError("mic_lost", t("mic.lost", "The microphone was disconnected.")),
          }),
        ),
      );
    }
    this._startMeter();
  }

  /** Level now: {level 0-1 (RMS, scaled for display), dbfs (RMS), peak 0-255 (loudest spectrum bin)}. */
  sample() {
    if (!this.analyser) return { level: 0, dbfs: -Infinity, peak: 0 };
    // Float samples: 8-bit ones are too coarse to tell -45 dBFS speech from silence.
    this.analyser.getFloatTimeDomainData(this._timeData);
    let sum = 0;
    for (const value of this._timeData) sum += value * value;
    const rms = Math.sqrt(sum / this._timeData.length);
    this.analyser.getByteFrequencyData(this._freqData);
    let peak = 0;
    for (const value of this._freqData) if (value > peak) peak = value;
    return { level: Math.min(1, rms * 4), dbfs: 20 * Math.log10(rms || 1e-9), peak };
  }

  _startMeter() {
    const tick = () => {
      const { level, dbfs, peak } = this.sample();
      if (this.recording && peak > this.takePeak) this.takePeak = peak;
      if (this.recording && dbfs > this.takeLoudestDbfs) this.takeLoudestDbfs = dbfs;
      this.dispatchEvent(new CustomEvent("level", { detail: { level, peak } }));
      this._meterLoop = requestAnimationFrame(tick);
    };
    this._meterLoop = requestAnimationFrame(tick);
  }

  elapsedSeconds() {
    return this.recording ? (performance.now() - this.startedAt) / 1000 : 0;
  }

  start() {
    if (!this.isOpen) throw new MicError("mic_closed", t("mic.closed", "Open the microphone first."));
    const options = this.mimeType ? { mimeType: this.mimeType, audioBitsPerSecond: 64000 } : {};
    this.mediaRecorder = new MediaRecorder(this.destination.stream, options);
    this._chunks = [];
    this.mediaRecorder.addEventListener("dataavailable", (event) => {
      if (event.data && event.data.size) this._chunks.push(event.data);
    });
    this.takePeak = 0;
    this.takeLoudestDbfs = -Infinity;
    this.mediaRecorder.start(1000);
    // The take's audio clock starts here. start() attaches the recorder to the track synchronously,
    // so the first sample it records is the next audio buffer delivered; MediaRecorder gives no
    // timestamp of its own. Measured in Chromium: the decoded take lasts (stop() - this moment) to
    // within one 20 ms Opus frame, while the `start` event comes ~50 ms later, so this moment (not
    // the event) is the first recorded sample. Pointer events carry timeStamps on the same
    // performance.now() timeline, so audioSeconds() puts them on the audio's clock.
    this.startedAt = performance.now();
    this.stoppedAt = null;
    this.recording = true;
  }

  /** A performance.now() timestamp (an event's timeStamp) as seconds into the take; null when not recording. */
  audioSeconds(timeStamp = performance.now()) {
    if (!this.recording || (this.stoppedAt !== null && timeStamp > this.stoppedAt)) return null;
    return (timeStamp - this.startedAt) / 1000;
  }

  /** Stop after the tail; resolves {blob, type, seconds, peak}. */
  async stop({ tail = true } = {}) {
    if (!this.recording) return null;
    const recorder = this.mediaRecorder;
    if (tail) await new Promise((resolve) => setTimeout(resolve, TAIL_MS));
    const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
    // The take's last sample: the `stop` event can come 100 ms later on a busy machine, and nothing
    // after this moment is in the audio (see start()).
    this.stoppedAt = performance.now();
    recorder.stop();
    await stopped;
    this.recording = false;
    const seconds = (this.stoppedAt - this.startedAt) / 1000;
    const type = recorder.mimeType || this.mimeType || "audio/webm";
    const blob = new Blob(this._chunks, { type });
    this._chunks = [];
    return { blob, type, seconds, peak: this.takePeak };
  }

  /** Drop the take being recorded. */
  cancel() {
    if (!this.recording) return;
    this.recording = false;
    try {
      this.mediaRecorder.stop();
    } catch {
      // already stopped
    }
    this._chunks = [];
  }

  /** Release the microphone (the browser's recording indicator goes out); open() takes it again. */
  close() {
    this.cancel();
    cancelAnimationFrame(this._meterLoop);
    if (this._source) this._source.disconnect();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this._source = null;
    this.analyser = null;
    this.dispatchEvent(new CustomEvent("level", { detail: { level: 0, dbfs: -Infinity, peak: 0 } }));
  }

  audioContext() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    this.context = this.context || new AudioContextClass();
    return this.context;
  }
}

/**
 * Play a take through an AudioContext. Resolves a player {duration, stop(), ended: Promise, position()}.
 */
export async function playTake(context, blob) {
  if (context.state === "suspended") await context.resume();
  const buffer = await context.decodeAudioData(await blob.arrayBuffer());
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  const startedAt = context.currentTime;
  const ended = new Promise((resolve) => source.addEventListener("ended", resolve, { once: true }));
  source.start();
  return {
    duration: buffer.duration,
    ended,
    position: () => Math.min(buffer.duration, context.currentTime - startedAt),
    stop: () => {
      try {
        source.stop();
      } catch {
        // already ended
      }
    },
  };
}
